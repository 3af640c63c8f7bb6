// Package agent is kmt's in-cluster fault agent: one Job per cluster of a
// scenario run. It waits for the load's real start (the first entry of the
// run in the ledger topic), exports the run's kmt_run_info, kmt_phase and
// kmt_fault_active series on that clock, performs the faults Chaos Mesh
// cannot (process pause by pod exec, topic operations through the Kafka
// admin API), reads what this cluster's Chaos Mesh Workflow really injected,
// and publishes one Record per fault to the fault topic on the source
// cluster. The validator (in the target cluster) reads both agents' records
// before judging, so a fault that selected nothing or never ran is reported
// as such instead of a verdict "under fault".
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// DefaultTopic is the fault topic on the source cluster. Like the ledger
// topic it starts with "__", which MirrorMaker 2 does not copy.
const DefaultTopic = "__kmt_faults"

// RecordVersion is the Record format version (field "v").
const RecordVersion = 1

// Who performed a fault.
const (
	ByChaosMesh = "chaos-mesh"
	ByKmt       = "kmt"
	ByNobody    = "none"
)

// Record is what one cluster's agent knows about one fault, or (Done) the
// agent's last word: the faults it owned and the load start it used.
type Record struct {
	V       int    `json:"v"`
	Run     string `json:"run"`
	Cluster string `json:"cluster"` // whose agent: source | target
	Fault   string `json:"fault,omitempty"`
	Kind    string `json:"kind,omitempty"`
	By      string `json:"by,omitempty"`
	// Start and End are when the fault was really in force (zero: never).
	Start   time.Time `json:"start,omitzero"`
	End     time.Time `json:"end,omitzero"`
	Targets []string  `json:"targets,omitempty"` // pods, or topic partitions
	Actions []string  `json:"actions,omitempty"`
	Error   string    `json:"error,omitempty"`
	// Topic and LogStart: a purge's new log start offset per partition.
	Topic    string        `json:"topic,omitempty"`
	LogStart map[int]int64 `json:"logStart,omitempty"`

	Done      bool      `json:"done,omitempty"`
	Faults    []string  `json:"faults,omitempty"`
	LoadStart time.Time `json:"loadStart,omitzero"`
}

// kafkaClient is a franz-go client of the source cluster, built by the one
// client factory (TLS and SASL included); client id kmt-agent unless src
// names one.
func kafkaClient(src kafkaclient.Config, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(src.Brokers) == 0 {
		return nil, errors.New("no source bootstrap address (--source-bootstrap host:port,...)")
	}
	if src.ClientID == "" {
		src.ClientID = "kmt-agent"
	}
	return src.NewKgo(opts...)
}

// Writer publishes Records to the fault topic, keyed by run id (one
// partition keeps a run's records in order).
type Writer struct {
	cl    *kgo.Client
	topic string
}

// NewWriter connects to the source cluster; the topic is created on first
// write if the cluster allows it, else by ensureTopic.
func NewWriter(ctx context.Context, src kafkaclient.Config, topic string) (*Writer, error) {
	if topic == "" {
		topic = DefaultTopic
	}
	cl, err := kafkaClient(src, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, fmt.Errorf("fault topic writer for %v: %w", src.Brokers, err)
	}
	if err := ensureTopic(ctx, cl, topic); err != nil {
		cl.Close()
		return nil, err
	}
	return &Writer{cl: cl, topic: topic}, nil
}

// Write publishes r and waits for the ack.
func (w *Writer) Write(ctx context.Context, r Record) error {
	r.V = RecordVersion
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	res := w.cl.ProduceSync(ctx, &kgo.Record{Key: []byte(r.Run), Value: b})
	if err := res.FirstErr(); err != nil {
		return fmt.Errorf("writing fault record %s/%s to topic %s: %w", r.Cluster, r.Fault, w.topic, err)
	}
	return nil
}

// Close releases the connection.
func (w *Writer) Close() { w.cl.Close() }

// Read calls fn for every record of run in the fault topic, from the
// beginning, until ctx ends. A topic that does not exist yet is waited for.
func Read(ctx context.Context, src kafkaclient.Config, topic, run string, fn func(Record)) error {
	if topic == "" {
		topic = DefaultTopic
	}
	cl, err := kafkaClient(src, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Errorf("fault topic reader for %v: %w", src.Brokers, err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachRecord(func(kr *kgo.Record) {
			if string(kr.Key) != run {
				return
			}
			var r Record
			if json.Unmarshal(kr.Value, &r) == nil && r.Run == run {
				fn(r)
			}
		})
	}
}

// LoadStart finds when the load of run really started: the Start the
// loadgen put in its first ledger entry when the ledger carries one, else
// that entry's append time minus the ledger's flush interval (entries are
// flushed about once a second, the first one a flush after the first ack).
// It waits up to wait for the first entry.
func LoadStart(ctx context.Context, src kafkaclient.Config, topic, run string, wait time.Duration) (time.Time, error) {
	if topic == "" {
		topic = ledger.DefaultTopic
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cl, err := kafkaClient(src, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return time.Time{}, fmt.Errorf("ledger reader for %v: %w", src.Brokers, err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("no ledger entry of run %s in topic %s on %s within %s: did the load start (kmt loadgen --run-id %s --ledger-topic %s)?", run, topic, strings.Join(src.Brokers, ","), wait, run, topic)
		}
		var start time.Time
		fs.EachRecord(func(kr *kgo.Record) {
			if !start.IsZero() || string(kr.Key) != run {
				return
			}
			var e struct {
				Start time.Time `json:"start"`
			}
			_ = json.Unmarshal(kr.Value, &e)
			start = e.Start
			if start.IsZero() {
				start = kr.Timestamp.Add(-ledgerFlush)
			}
		})
		if !start.IsZero() {
			return start, nil
		}
	}
}

// ledgerFlush is the ledger topic writer's default flush interval.
const ledgerFlush = time.Second

// errNoTopic is returned when the fault topic cannot be made.
var errNoTopic = errors.New("fault topic missing")
