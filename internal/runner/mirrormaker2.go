package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// mm2Heap is MirrorMaker 2's -Xmx: two clusters and kmt share 2 cores and
// a few GB with it.
const mm2Heap = "512m"

// mm2Ends are the two clusters MirrorMaker 2 runs between, as it reaches
// them, with what kmt knows of them.
type mm2Ends struct {
	srcBoot, tgtBoot       string
	srcBrokers, tgtBrokers int // 0: not kmt's clusters (unknown)
	// precreate: kmt's embedded (kfake) clusters need MirrorMaker 2's
	// compacted topics created up front (see mirror.PrecreateTopics).
	precreate bool
	srcDial   func(ctx context.Context, network, addr string) (net.Conn, error)
}

// applyMirrorMaker2 names the target topics as MirrorMaker 2's replication
// policy will (unless the scenario named them) and appends the user's
// --mirror-config fragment to the scenario's mirror.config.
func applyMirrorMaker2(sp *scenarios.Spec, configFile string) error {
	m := &sp.Topology.Mirror
	if configFile != "" {
		if m.Kind != scenarios.MirrorMirrorMaker2 {
			return fmt.Errorf("--mirror-config %s is a MirrorMaker 2 properties fragment, but the mirror is %q; add --mirror mirrormaker2", configFile, m.Kind)
		}
		b, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("--mirror-config: %w", err)
		}
		if m.Config != "" && !strings.HasSuffix(m.Config, "\n") {
			m.Config += "\n"
		}
		m.Config += "# from --mirror-config " + configFile + "\n" + string(b)
	}
	if m.Kind != scenarios.MirrorMirrorMaker2 {
		return nil
	}
	for i := range sp.Topology.Topics {
		t := &sp.Topology.Topics[i]
		if t.TargetName == "" {
			t.TargetName = m.MirrorMaker2.TargetTopic(t.Name)
		}
	}
	return nil
}

// newMirrorMaker2 builds MirrorMaker 2 from the scenario and the
// distribution; the caller starts it. Its properties, log and last metrics
// scrape go to the report folder.
func (r *run) newMirrorMaker2(ctx context.Context, dist *kafkadist.Dist, ends mm2Ends, reg prometheus.Registerer) (*mirror.MirrorMaker2, error) {
	sp := &r.s.Spec
	mm := sp.Topology.Mirror.MirrorMaker2
	var topics []string
	for _, t := range sp.Topology.Topics {
		topics = append(topics, t.Name)
	}
	// Topics the timeline creates mid-run are in the flow's topic list up
	// front: MirrorMaker 2 picks them up at its next topic refresh.
	topics = append(topics, r.s.CreatedTopics()...)
	settings := mirror.MM2Settings{
		SourceBootstrap: ends.srcBoot, TargetBootstrap: ends.tgtBoot,
		SourceAlias: mm.SourceAlias, TargetAlias: mm.TargetAlias,
		Topics: topics, Policy: mm.ReplicationPolicy, Tasks: mm.Tasks,
		CheckpointInterval: mm2CheckpointInterval(sp), OffsetLagMax: mm.OffsetLagMax,
		SyncGroupOffsets:    sp.Failover != nil && sp.Failover.Offsets != scenarios.OffsetsCheckpoints,
		OffsetFlushInterval: mm.OffsetFlushInterval.D(), RefreshInterval: mm.RefreshInterval.D(),
		ExactlyOnce:   mm.ExactlyOnce,
		SourceBrokers: ends.srcBrokers, TargetBrokers: ends.tgtBrokers,
		Fragment: sp.Topology.Mirror.Config,
	}
	java2 := mm2JavaSecurity(r.o.Security)
	var env []string
	for _, side := range []struct {
		props *map[string]string
		alias string
	}{{&settings.SourceClient, "SOURCE"}, {&settings.TargetClient, "TARGET"}} {
		p, e, err := java2.JavaProps("KMT_MM2_" + side.alias)
		if err != nil {
			return nil, Usage(err)
		}
		*side.props = p
		env = append(env, e...)
	}
	logConf := filepath.Join(r.dir, "mirrormaker2.log4j2.properties")
	if err := os.WriteFile(logConf, []byte(mirror.MM2Log4j2Console), 0o644); err != nil {
		return nil, Env(fmt.Errorf("write %s: %w", logConf, err))
	}
	cmd, err := dist.Command(kafkadist.JVM{Main: mirror.MM2MainClass, Heap: mm2Heap, Props: []string{
		"-Dlog4j2.configurationFile=" + logConf,
		// names the run on the JVM's command line: `pgrep -f <run id>`
		// finds it (the leftover checks of the tests, and operators)
		"-Dkmt.run=" + r.runID,
	}})
	if err != nil {
		return nil, Env(err)
	}
	java := cmd.Args[:len(cmd.Args)-1] // without the main class: kmt adds its agent first
	java[0] = cmd.Path
	agent := ""
	if root, err := kafkadist.CacheRoot(); err == nil {
		agent, err = mirror.EnsureJMXExporter(ctx, root)
		if err != nil {
			r.log.Warn("MirrorMaker 2 runs without its own metrics (kmt still judges the copy by reading the target)", "err", err)
			agent = ""
		}
	}
	if ends.precreate {
		src, tgt := mirror.MM2InternalTopics(settings)
		if err := mirror.PrecreateTopics(ctx, kafkaclient.Config{Brokers: strings.Split(ends.srcBoot, ","), Dial: ends.srcDial}, src); err != nil {
			return nil, Env(err)
		}
		if err := mirror.PrecreateTopics(ctx, kafkaclient.Config{Brokers: strings.Split(ends.tgtBoot, ",")}, tgt); err != nil {
			return nil, Env(err)
		}
	}
	m, err := mirror.NewMirrorMaker2(mirror.MM2Config{
		Settings: settings, Java: java, Dir: r.dir, MetricsAgent: agent, Env: env,
		Registerer: reg, Logger: r.log.With("part", "mirror"),
	})
	if err != nil {
		return nil, Env(err) // the settings were checked in Prepare
	}
	r.mm2 = m
	return m, nil
}

// checkMirrorMaker2 renders the properties with placeholder addresses so a
// bad fragment or setting is a usage error before anything starts.
func checkMirrorMaker2(sp *scenarios.Spec) error {
	if sp.Topology.Mirror.Kind != scenarios.MirrorMirrorMaker2 {
		return nil
	}
	mm := sp.Topology.Mirror.MirrorMaker2
	_, err := mirror.MM2Properties(mirror.MM2Settings{
		SourceBootstrap: "source:9092", TargetBootstrap: "target:9092", Topics: []string{"t"},
		SourceAlias: mm.SourceAlias, TargetAlias: mm.TargetAlias, Policy: mm.ReplicationPolicy,
		ExactlyOnce: mm.ExactlyOnce, RESTPort: 1, Fragment: sp.Topology.Mirror.Config,
	})
	return err
}

// mm2JavaSecurity is kmt's TLS/SASL setting as MirrorMaker 2's Java
// clients take it.
func mm2JavaSecurity(s kafkaclient.Security) mirror.JavaSecurity {
	var j mirror.JavaSecurity
	if t := s.TLS; t != nil {
		j.TLS, j.CAFile, j.CertFile, j.KeyFile, j.Insecure = true, t.CAFile, t.CertFile, t.KeyFile, t.Insecure
	}
	if a := s.SASL; a != nil {
		j.Mechanism, j.Username, j.Password = a.Mechanism, a.Username, a.Password
	}
	return j
}
