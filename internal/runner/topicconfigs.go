package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// ensureTopicConfigs is topic creation on the user's clusters: a topic
// the scenario gives configs for (spec.topology.topics[].config on the
// source, targetConfig on the target) is created with them when missing,
// and refused (exit 2) when it exists with other values. Topics without
// configs are left as they are: the user creates them (the loadgen never
// does, so a typo cannot produce to a new topic).
func (r *run) ensureTopicConfigs(ctx context.Context) error {
	for _, side := range []struct {
		name, boot string
		target     bool
	}{{"source", r.clusters.srcBoot, false}, {"target", r.clusters.tgtBoot, true}} {
		var adm *kadm.Client
		for _, t := range r.s.Spec.Topology.Topics {
			topic, configs := t.Name, t.Config
			if side.target {
				topic, configs = t.Target(), t.TargetConfig
			}
			if len(configs) == 0 {
				continue
			}
			if adm == nil {
				cl, err := kafkaclient.Config{Brokers: bootstrap.Split(side.boot), Security: r.o.Security}.NewKgo()
				if err != nil {
					return Usage(fmt.Errorf("%s cluster %s: %w", side.name, side.boot, err))
				}
				defer cl.Close()
				adm = kadm.NewClient(cl)
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			created, err := kafkaclient.EnsureTopic(cctx, adm, topic, t.Partitions, configs)
			cancel()
			switch {
			case errors.Is(err, kafkaclient.ErrTopicConfigMismatch):
				return Usage(fmt.Errorf("%s cluster %s: %w", side.name, side.boot, err))
			case err != nil:
				return Env(fmt.Errorf("%s cluster %s: %w", side.name, side.boot, err))
			case created:
				r.log.Info("created topic with the scenario's configs", "cluster", side.name, "topic", topic, "partitions", t.Partitions, "configs", configs)
			}
		}
	}
	return nil
}

// createdConfigsFault names the topic configs a run created its source
// topics with, where report.json's metadata_sync lists them.
const createdConfigsFault = "spec.topology.topics.config"

// noteTopicConfigs asks the validator to watch the source topics' configs
// arrive on their target topics (the mirror carries them over: MirrorMaker
// 2 syncs topic configs, the reference mirror copies them), timed from
// now (the mirror is up: MirrorMaker 2's JVM took 85 s to start on a
// loaded 2-core machine, which is not its config sync), within
// spec.validation.syncWithin. A config the target topic was given on
// purpose (targetConfig) is the target's own and not watched.
func (r *run) noteTopicConfigs(context.Context) error {
	now := time.Now()
	for _, t := range r.s.Spec.Topology.Topics {
		want := map[string]string{}
		for k, v := range t.Config {
			if _, own := t.TargetConfig[k]; !own {
				want[k] = v
			}
		}
		if len(want) > 0 {
			r.val.NoteConfigChange(createdConfigsFault, t.Name, want, now)
		}
	}
	return nil
}
