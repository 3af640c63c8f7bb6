package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestTransactionalLoadExactOutcomes: 30 transactions of 10, abort 0.2 ->
// exactly 6 aborted (60 records aborted, 240 acked) in the ledger, in the
// ledger topic read back, and as a read_committed consumer of the source
// sees it (240 records, every one with its transaction header); a
// read_uncommitted one sees all 300.
func TestTransactionalLoadExactOutcomes(t *testing.T) {
	_, bs := newCluster(t, 1, "orders")
	led := ledger.New()
	st, err := Run(context.Background(), Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "tx", Streams: 4, Count: 300,
		Transactions: &scenarios.Transactions{Size: 10, Abort: 0.2}, Ledger: led, LedgerTopic: ledger.DefaultTopic, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 300 || st.Acked != 240 || st.Aborted != 60 || st.Failed != 0 || st.Transactions != 30 || st.AbortedTransactions != 6 {
		t.Fatalf("stats %+v: want sent 300, acked 240, aborted 60, 30 transactions of which 6 aborted", st)
	}
	if a, f := led.Totals(); a != 240 || f != 0 || led.TotalAborted() != 60 {
		t.Fatalf("ledger acked %d failed %d aborted %d, want 240 0 60", a, f, led.TotalAborted())
	}
	back := ledger.New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ledger.ReadTopicWith(ctx, kafkaclient.Config{Brokers: bootlist.Split(bs)}, ledger.DefaultTopic, "tx", back); err != nil {
		t.Fatal(err)
	}
	if a, _ := back.Totals(); a != 240 || back.TotalAborted() != 60 || len(back.Problems()) != 0 {
		t.Fatalf("ledger topic read back: acked %d aborted %d problems %q, want 240, 60, none", a, back.TotalAborted(), back.Problems())
	}
	for _, iso := range []struct {
		level kgo.IsolationLevel
		want  int
	}{{kgo.ReadCommitted(), 240}, {kgo.ReadUncommitted(), 300}} {
		n, withHeader := 0, 0
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootlist.Split(bs)...), kgo.ConsumeTopics("orders"), kgo.FetchIsolationLevel(iso.level),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		for n < iso.want && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				n++
				for _, h := range r.Headers {
					if h.Key == wire.TxnHeaderKey {
						if _, size, err := wire.ParseTxnHeader(h.Value); err == nil && size == 10 {
							withHeader++
						}
					}
				}
			})
		}
		// nothing more beyond the expected count
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		more := cl.PollRecords(wctx, 1000)
		wcancel()
		cl.Close()
		n += len(more.Records())
		if n != iso.want || withHeader != iso.want {
			t.Errorf("isolation %v: %d records (%d with a transaction header of size 10), want %d", iso.level, n, withHeader, iso.want)
		}
	}
}
