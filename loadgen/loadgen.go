// Package loadgen produces sequenced kmt records (internal/check/wire) to the
// source cluster at a controlled rate and records in a ledger exactly which
// sequences the source acknowledged (acks=all) and which sends failed.
//
// Streams are Kafka keys (wire.Key(stream)); per (topic, stream, epoch) the
// sequence starts at 0 and increments by one per record handed to the
// producer. Every Run is one loadgen instance with its own epoch, carried in
// each record and ledger entry, so a restarted loadgen's sequences are new
// streams, never duplicates of the previous instance's. Records go
// round-robin over topics, then streams, so every stream of every topic gets
// the same share of the rate.
//
// The pieces: Pacer (pacing arithmetic), producer.go (the franz-go producer
// and its exact per-record outcome), runid.go (refusing a run id already in
// use), job.go (the `kmt loadgen` entry point).
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Config configures a load run. Zero values of optional fields take the
// defaults documented on each field.
type Config struct {
	Bootstrap string                                                            // comma-separated source brokers
	Dial      func(ctx context.Context, network, addr string) (net.Conn, error) // optional (embedded: Source.DirectDial)
	Security  kafkaclient.Security                                              // TLS / SASL; zero: plaintext

	Topics []string // source topics; they must exist (the loadgen never creates them)
	RunID  string   // wire.ValidRunID; refused when already in use (see CheckRunID)
	// Epoch identifies this loadgen instance within the run; 0 picks a
	// random non-zero one.
	Epoch uint32

	// Rate is the target in messages per second over all topics; 0 means
	// as fast as the cluster acknowledges (bounded by MaxInFlight).
	Rate float64
	// MessageSize is the encoded value size in bytes; values below the
	// header size produce header-only records. See Padding.
	MessageSize int
	Streams     int // streams (keys) per topic, default 1
	// Instance (0-based) of Instances loadgens of one run, e.g. the pods of
	// an Indexed Job: this one writes streams Instance*Streams up to
	// (Instance+1)*Streams-1, so instances never share a key (a mirror's
	// per-key behaviour is judged per stream) and spread over partitions.
	// Each instance has its own Epoch too. Zero: one loadgen.
	Instance, Instances int
	// Launch is the token the instances of one launch share (instances.go).
	Launch   string
	Duration time.Duration // stop after this long; 0: no limit
	Count    int64         // stop after this many messages over all topics; 0: no limit

	// Transactions: write in transactions, aborting a fraction (transactional.go).
	Transactions *scenarios.Transactions
	// Fidelity: extra headers, tombstones, large records, compression (fidelity.go).
	Fidelity *scenarios.Fidelity

	Ledger      *ledger.Ledger // filled as acks arrive; nil: a private one
	LedgerTopic string         // optional: also publish the ledger to this topic (ledger.DefaultTopic)

	// MaxInFlight bounds messages handed to the producer but not yet
	// acknowledged or failed, so memory stays bounded when the cluster
	// does not keep up. Default: 64 MiB worth of messages, within [1000, 200000].
	MaxInFlight int

	// SkipRunIDCheck skips the check that the run id is unused (for a
	// caller that already made it, e.g. against both clusters).
	SkipRunIDCheck bool

	Registerer prometheus.Registerer // optional
	Logger     *slog.Logger
	Progress   func(Stats) // optional, called about once a second from Run's goroutine
}

// Stats summarises a run. Sent counts messages handed to the producer;
// each ends as exactly one of Acked, Failed or Aborted (written in a
// transaction the loadgen aborted).
type Stats struct {
	Sent, Acked, Failed uint64
	Aborted             uint64
	// Transactions and AbortedTransactions count the transactions ended
	// (committed or aborted) and those aborted, with Config.Transactions.
	Transactions, AbortedTransactions uint64
	Elapsed                           time.Duration
	// Skipped counts scheduled messages never sent because the producer
	// was more than one second of load behind (the cluster did not keep up).
	Skipped uint64
	Epoch   uint32 // this instance's epoch
}

// Rate is the achieved send rate in messages per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds()
}

// ErrBadConfig marks errors in what the caller asked for (exit 2 in kmt).
var ErrBadConfig = errors.New("bad loadgen configuration")

func badConfig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
}

func (cfg *Config) check() error {
	if len(bootstrap.Split(cfg.Bootstrap)) == 0 {
		return badConfig("no bootstrap address (got %q)", cfg.Bootstrap)
	}
	if len(cfg.Topics) == 0 {
		return badConfig("no topics to produce to")
	}
	seen := map[string]bool{}
	for _, t := range cfg.Topics {
		if t == "" || seen[t] || !wire.ValidTopic(t) {
			return badConfig("topic list %q has an empty, repeated or invalid name", cfg.Topics)
		}
		seen[t] = true
	}
	if !wire.ValidRunID(cfg.RunID) {
		return badConfig("run id %q is not valid (1..%d of [A-Za-z0-9._-])", cfg.RunID, wire.MaxRunIDLen)
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		return badConfig("rate %v must be a finite number >= 0 (0: unlimited)", cfg.Rate)
	}
	if cfg.MessageSize < 0 || cfg.MessageSize > wire.MaxPadding {
		return badConfig("message size %d out of range [0, %d]", cfg.MessageSize, wire.MaxPadding)
	}
	if cfg.Streams < 0 || int64(cfg.Streams) > math.MaxUint32 {
		return badConfig("streams %d out of range", cfg.Streams)
	}
	if err := cfg.checkInstances(); err != nil {
		return err
	}
	if int64(cfg.Instance+1)*int64(max(cfg.Streams, 1)) > math.MaxUint32 {
		return badConfig("instance %d with %d streams each goes past stream %d", cfg.Instance, cfg.Streams, uint32(math.MaxUint32))
	}
	if cfg.Count < 0 || cfg.Duration < 0 || cfg.MaxInFlight < 0 {
		return badConfig("count %d, duration %s and max in-flight %d must not be negative", cfg.Count, cfg.Duration, cfg.MaxInFlight)
	}
	return cfg.checkModes() // fidelity.go
}

// withDefaults fills the optional fields.
func (cfg Config) withDefaults() Config {
	if cfg.Streams == 0 {
		cfg.Streams = 1
	}
	if cfg.MaxInFlight == 0 {
		per := cfg.MessageSize + 256 // value + key + the producer's record overhead
		cfg.MaxInFlight = min(max((64<<20)/per, 1000), 200000)
	}
	if cfg.Epoch == 0 {
		cfg.Epoch = NewEpoch()
	}
	if cfg.Ledger == nil {
		cfg.Ledger = ledger.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// firstStream is the number of this instance's first stream.
func (cfg Config) firstStream() uint32 { return uint32(cfg.Instance * max(cfg.Streams, 1)) }

// NewEpoch returns a random non-zero epoch: two loadgen instances of one run
// get different epochs (a 1 in 4 billion chance aside), without coordination.
func NewEpoch() uint32 {
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("loadgen: no randomness for an epoch: %v", err))
		}
		if e := binary.LittleEndian.Uint32(b[:]); e != 0 {
			return e
		}
	}
}

const (
	drainTimeout  = 10 * time.Second // wait for in-flight completions after stop
	ledgerTimeout = 15 * time.Second // final ledger topic flush
	chunk         = 1000             // most records handed to the producer per step
)

// Run produces until Count messages were sent, Duration passed or ctx ends
// (a normal stop, not an error), then waits (bounded) for in-flight
// completions, closes the producer (what is still unanswered is recorded
// failed: it may or may not be in the log), marks the ledger done and, with
// LedgerTopic, publishes the final ledger entry. Before producing anything
// it refuses a run id already in use (ErrRunIDInUse) unless SkipRunIDCheck.
// The returned Stats are valid even when err != nil after the run started.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	if err := cfg.check(); err != nil {
		return Stats{}, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("component", "loadgen", "run", cfg.RunID, "epoch", cfg.Epoch)
	p, err := newProducer(ctx, cfg, log)
	if err != nil {
		return Stats{}, err
	}
	defer p.close()
	if !cfg.SkipRunIDCheck {
		if err := cfg.checkRunID(ctx); err != nil {
			return Stats{}, err
		}
	}
	var tw *ledger.TopicWriter
	if cfg.LedgerTopic != "" {
		tw, err = ledger.NewTopicWriter(ctx, ledger.TopicWriterConfig{
			Bootstrap: cfg.Bootstrap, Dial: cfg.Dial, Security: cfg.Security, Topic: cfg.LedgerTopic, RunID: cfg.RunID, Epoch: cfg.Epoch,
			Ledger: cfg.Ledger, Logger: cfg.Logger, Launch: cfg.Launch, Instances: cfg.Instances, Claim: cfg.Instances > 1 && cfg.Instance == 0,
		})
		if err != nil {
			return Stats{}, fmt.Errorf("loadgen: %w", err)
		}
	}
	log.Info("load started", "topics", cfg.Topics, "rate", cfg.Rate, "size", cfg.MessageSize,
		"streams", cfg.Streams, "duration", cfg.Duration, "count", cfg.Count, "ledger_topic", cfg.LedgerTopic)
	var st Stats
	if cfg.Transactions != nil {
		st = p.produceTxns(ctx)
	} else {
		st = p.produce(ctx, NewPacer(cfg.Rate, uint64(cfg.Count), cfg.Duration, chunk))
	}
	p.finish(drainTimeout)
	cfg.Ledger.MarkDone()
	st.Acked, st.Failed, st.Aborted = p.acked.Load(), p.failed.Load(), p.aborted.Load()
	if cfg.Progress != nil {
		cfg.Progress(st)
	}
	log.Info("load finished", "sent", st.Sent, "acked", st.Acked, "failed", st.Failed, "aborted", st.Aborted, "skipped", st.Skipped,
		"elapsed", st.Elapsed.Round(time.Millisecond), "rate", math.Round(st.Rate()))
	if tw != nil {
		lctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
		defer cancel()
		if err := tw.Close(lctx); err != nil {
			return st, fmt.Errorf("loadgen: %w", err)
		}
	}
	return st, nil
}
