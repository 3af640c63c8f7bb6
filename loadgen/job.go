package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Job is one `kmt loadgen` invocation: the CLI and the charts' loadgen
// Deployment run it, tests call it directly. Values left zero in Config come
// from Scenario (its topics and load) when one is given.
type Job struct {
	Config
	Scenario *scenarios.Scenario // optional

	// CreateTopics creates missing topics first (partitions from Scenario,
	// else scenarios.DefaultPartitions) with ReplicationFactor (-1: the
	// broker's default).
	CreateTopics      bool
	ReplicationFactor int
	// Linger keeps the process alive after the load until ctx ends, for
	// runners that restart a process that exits (a Deployment would produce
	// again; the charts run the loadgen as a Job that never retries).
	Linger bool

	Summary  io.Writer // optional: one JSON line with the outcome
	Progress io.Writer // optional: one line a second
}

// IsBadInput reports whether err is about what the caller asked for (exit 2
// in kmt: bad values, a run id already in use) rather than the environment.
func IsBadInput(err error) bool {
	return errors.Is(err, ErrBadConfig) || errors.Is(err, ErrRunIDInUse)
}

// Run runs the job: fills defaults from the scenario, creates topics if
// asked, produces (refusing a run id in use), writes the summary, lingers.
func (j Job) Run(ctx context.Context) (Stats, error) {
	cfg := j.withScenario()
	if len(cfg.Topics) == 0 {
		return Stats{}, badConfig("no topic to produce to: give --topic or --scenario")
	}
	if cfg.Duration == 0 && cfg.Count == 0 {
		return Stats{}, badConfig("give --duration or --count (or --scenario): the loadgen must know when to stop")
	}
	if j.Progress != nil {
		cfg.Progress = func(st Stats) {
			fmt.Fprintf(j.Progress, "[%6.1fs] sent=%d acked=%d failed=%d rate=%.0f/s\n", st.Elapsed.Seconds(), st.Sent, st.Acked, st.Failed, st.Rate())
		}
	}
	if j.CreateTopics && !cfg.SkipRunIDCheck {
		// Refuse a run id in use before creating anything: a refused run
		// leaves the clusters as it found them.
		if err := cfg.checkRunID(ctx); err != nil {
			return Stats{}, err
		}
		cfg.SkipRunIDCheck = true // checked just now
	}
	if j.CreateTopics {
		if err := EnsureTopics(ctx, kafkaclient.Config{Brokers: bootlist.Split(cfg.Bootstrap), Dial: cfg.Dial, Security: cfg.Security}, j.topicSpecs(cfg.Topics), j.ReplicationFactor); err != nil {
			return Stats{}, err
		}
	}
	st, err := Run(ctx, cfg)
	if j.Summary != nil {
		json.NewEncoder(j.Summary).Encode(map[string]any{"run": cfg.RunID, "epoch": st.Epoch, "sent": st.Sent, "acked": st.Acked,
			"failed": st.Failed, "skipped": st.Skipped, "seconds": st.Elapsed.Seconds(), "rate": st.Rate()})
	}
	if err != nil {
		return st, err
	}
	if j.Linger && ctx.Err() == nil {
		cfg.Logger.Info("load finished; lingering until terminated (--linger)")
		<-ctx.Done()
	}
	return st, nil
}

// withScenario returns the Config with the scenario's topics and load where
// the Config left them zero, and the CLI's floors (1 stream, 128 bytes).
func (j Job) withScenario() Config {
	cfg := j.Config
	if s := j.Scenario; s != nil {
		if len(cfg.Topics) == 0 {
			for _, t := range s.Spec.Topology.Topics {
				cfg.Topics = append(cfg.Topics, t.Name)
			}
		}
		l := s.Spec.Load
		cfg.Rate = orZero(cfg.Rate, l.Rate)
		cfg.Duration = orZero(cfg.Duration, l.Duration.D())
		cfg.Streams = orZero(cfg.Streams, l.Streams)
		cfg.MessageSize = orZero(cfg.MessageSize, l.MessageSize)
		cfg.Count = orZero(cfg.Count, l.Count)
		cfg.Transactions = orZero(cfg.Transactions, l.Transactions)
		cfg.Fidelity = orZero(cfg.Fidelity, l.Fidelity)
	}
	cfg.Streams, cfg.MessageSize = max(cfg.Streams, 1), max(cfg.MessageSize, 128)
	cfg.Rate, cfg.Count = cfg.share()
	return cfg.withDefaults()
}

func orZero[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

func (j Job) topicSpecs(topics []string) []TopicSpec {
	var specs []TopicSpec
	for _, t := range topics {
		spec := TopicSpec{Name: t, Partitions: scenarios.DefaultPartitions}
		if j.Scenario != nil {
			for _, st := range j.Scenario.Spec.Topology.Topics {
				if st.Name == t {
					spec.Partitions, spec.Configs = st.Partitions, st.Config
				}
			}
		}
		specs = append(specs, spec)
	}
	return specs
}
