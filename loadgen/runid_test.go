package loadgen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

// TestRunRefusesARunIDInUse: a run id with records in the topics or entries
// in the ledger topic is refused before anything is produced (the topic
// holds exactly what it held before), naming where it was found; a fresh id
// on the same cluster runs.
func TestRunRefusesARunIDInUse(t *testing.T) {
	_, bs := newCluster(t, 1, "orders", "payments")
	first := func(cfg Config) {
		t.Helper()
		cfg.Bootstrap, cfg.Count, cfg.Logger = bs, 20, quiet()
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	first(Config{Topics: []string{"orders"}, RunID: "used"})
	first(Config{Topics: []string{"payments"}, RunID: "ledgered", LedgerTopic: ledger.DefaultTopic})
	damaged := wire.Append(nil, wire.Record{RunID: "damaged", Topic: "payments", Stream: 0, Seq: 0, ProducedAt: time.Now(), Padding: 10})
	damaged[len(damaged)-1] ^= 0x01 // checksum no longer holds; the run id is still readable
	produceRaw(t, bs, "payments", damaged)

	cases := []struct {
		name   string
		cfg    Config
		where  string // "" : allowed
		topics []string
	}{
		{"records in the topic", Config{Topics: []string{"orders"}, RunID: "used"}, `topic "orders"`, []string{"orders"}},
		{"entries in the ledger topic", Config{Topics: []string{"orders"}, RunID: "ledgered", LedgerTopic: ledger.DefaultTopic}, `ledger topic "__kmt_ledger"`, []string{"orders"}},
		{"a damaged record of the run", Config{Topics: []string{"payments"}, RunID: "damaged"}, `topic "payments"`, []string{"payments"}},
		{"a fresh run id", Config{Topics: []string{"orders", "payments"}, RunID: "fresh", LedgerTopic: ledger.DefaultTopic}, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := logSize(t, bs, tc.topics)
			cfg := tc.cfg
			cfg.Bootstrap, cfg.Count, cfg.Logger = bs, 10, quiet()
			st, err := Run(context.Background(), cfg)
			if tc.where == "" {
				if err != nil || st.Acked != 10 {
					t.Fatalf("fresh run id: %+v, %v; want 10 acked", st, err)
				}
				return
			}
			var ue *RunIDInUseError
			if !errors.Is(err, ErrRunIDInUse) || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.where) || !strings.Contains(err.Error(), "pick another") {
				t.Fatalf("err %v, want ErrRunIDInUse naming %s and saying to pick another", err, tc.where)
			}
			if st.Sent != 0 {
				t.Fatalf("sent %d records under a refused run id", st.Sent)
			}
			if after := logSize(t, bs, tc.topics); after != before {
				t.Fatalf("topics %v hold %d records after the refusal, %d before", tc.topics, after, before)
			}
		})
	}
}

// client is a franz-go client of the cluster at bs, closed with the test,
// and a context that ends with it (or after 10 s).
func client(t *testing.T, bs string) (*kgo.Client, context.Context) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bs, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return cl, ctx
}

func produceRaw(t *testing.T, bs, topic string, v []byte) {
	t.Helper()
	cl, ctx := client(t, bs)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: wire.Key(0), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// logSize is the sum of the end offsets of topics' partitions.
func logSize(t *testing.T, bs string, topics []string) int64 {
	t.Helper()
	cl, ctx := client(t, bs)
	var n int64
	for _, topic := range topics {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	}
	return n
}

// TestRecordsAndLedgerCarryTheEpoch: every record names its topic and the
// instance's epoch, and the ledger keys carry the same epoch; two runs get
// different epochs.
func TestRecordsAndLedgerCarryTheEpoch(t *testing.T) {
	_, bs := newCluster(t, 1, "orders")
	var epochs []uint32
	for i, run := range []string{"e1", "e2"} {
		led := ledger.New()
		st, err := Run(context.Background(), Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: run, Count: 30, Streams: 3, Ledger: led, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		if st.Epoch == 0 {
			t.Fatal("epoch 0: every instance must get a non-zero epoch")
		}
		epochs = append(epochs, st.Epoch)
		n := 0
		for _, r := range readAll(t, bs, "orders", 30*(i+1)) {
			if r.rec.RunID != run {
				continue
			}
			n++
			if r.rec.Epoch != st.Epoch || r.rec.Topic != "orders" {
				t.Errorf("record %+v: want epoch %d and topic orders", r.rec, st.Epoch)
			}
		}
		keys := 0
		led.View(func(k ledger.StreamKey, s *ledger.Stream) {
			keys++
			if k.Epoch != st.Epoch || s.Acked.Len() != 10 {
				t.Errorf("ledger key %+v with %d acked; want epoch %d and 10 acked", k, s.Acked.Len(), st.Epoch)
			}
		})
		if n != 30 || keys != 3 {
			t.Fatalf("run %s: %d records, %d ledger streams; want 30 and 3", run, n, keys)
		}
	}
	if epochs[0] == epochs[1] {
		t.Fatalf("two runs got the same epoch %d", epochs[0])
	}
}

// A job that would create topics refuses a run id in use before creating
// anything: the refused run leaves no new topic behind.
func TestJobRefusesBeforeCreatingTopics(t *testing.T) {
	_, bs := newCluster(t, 1, "orders")
	if _, err := Run(context.Background(), Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "taken", Count: 5, LedgerTopic: ledger.DefaultTopic, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	j := Job{Config: Config{Bootstrap: bs, Topics: []string{"brand-new"}, RunID: "taken", Count: 5, LedgerTopic: ledger.DefaultTopic, Logger: quiet()}, CreateTopics: true, ReplicationFactor: -1}
	if _, err := j.Run(context.Background()); !errors.Is(err, ErrRunIDInUse) {
		t.Fatalf("err %v, want ErrRunIDInUse", err)
	}
	cl, ctx := client(t, bs)
	td, err := kadm.NewClient(cl).ListTopics(ctx, "brand-new")
	if err != nil {
		t.Fatal(err)
	}
	if td.Has("brand-new") {
		t.Fatal("the refused job created topic brand-new")
	}
}
