package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
)

// cpuTime is this process's user+system CPU time. The embedded brokers run
// in the same process, so it includes their work; compare the figure of the
// loadgen with the bare producer's from the same run (same brokers, same
// records) to see the loadgen's own cost.
var cpuTime = testkit.ProcessCPU

// bareFranz produces n records of size bytes to topic with a bare franz-go
// producer (testkit.FranzProducer). With encode, every value is a kmt record
// (what the loadgen must build per record), which isolates the client's own
// cost. It returns the wall time from creating the client to the last ack
// (as the loadgen is timed) and the process CPU time spent.
func bareFranz(b *testing.B, bs, topic string, n, size, streams int, encode bool) (time.Duration, time.Duration) {
	keys := make([][]byte, streams)
	for s := range keys {
		keys[s] = wire.Key(uint32(s))
	}
	p := testkit.FranzProducer{Brokers: splitAddrs(bs), Topic: topic, Keys: keys, Size: size}
	if encode {
		// Built the loadgen's way (one wire.Encoder per stream), into a
		// fresh slice per record as a bare producer would.
		encs := make([]*wire.Encoder, streams)
		for s := range encs {
			encs[s] = wire.NewEncoder("franz", topic, 1, uint32(s))
		}
		p.Value = func(i int) []byte {
			return encs[i%streams].AppendSized(make([]byte, 0, size), uint64(i/streams), time.Now(), size)
		}
	}
	wall, cpu, err := p.Produce(n)
	if err != nil {
		b.Fatal(err)
	}
	return wall, cpu
}

func splitAddrs(bs string) []string { return strings.Split(bs, ",") }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// contender is one producer the benchmark compares: it writes n records of
// size bytes to topic and returns the wall time from creating its client to
// the last acknowledgement and the process CPU time spent.
type contender struct {
	name string
	run  func(b *testing.B, bs, topic string, n, size int) (wall, cpu time.Duration)
}

const benchStreams = 16

func contenders() []contender {
	franz := func(encode bool) func(*testing.B, string, string, int, int) (time.Duration, time.Duration) {
		return func(b *testing.B, bs, topic string, n, size int) (time.Duration, time.Duration) {
			return bareFranz(b, bs, topic, n, size, benchStreams, encode)
		}
	}
	return []contender{
		{"franz", franz(false)},
		{"franz_kmt_records", franz(true)},
		{"loadgen", func(b *testing.B, bs, topic string, n, size int) (time.Duration, time.Duration) {
			cpu0, start := cpuTime(), time.Now()
			st, err := Run(context.Background(), Config{
				Bootstrap: bs, Topics: []string{topic}, RunID: "bench-" + topic, MessageSize: size,
				Streams: benchStreams, Count: int64(n), Ledger: ledger.New(), Logger: quiet(),
				// The run-id check reads the topics once before the load
				// starts: start-up, not throughput (the bare producers
				// have none).
				SkipRunIDCheck: true,
			})
			wall, cpu := time.Since(start), cpuTime()-cpu0
			if err != nil {
				b.Fatal(err)
			}
			if st.Acked != uint64(n) {
				b.Fatalf("loadgen acked %d of %d (failed %d)", st.Acked, n, st.Failed)
			}
			return wall, cpu
		}},
	}
}

// benchTopic creates a fresh 6-partition topic for one measured run and
// deletes it afterwards, so every run writes to an empty log and the
// brokers' memory does not grow run after run (a larger live heap would
// make later runs collect garbage less often than earlier ones).
func benchTopic(b *testing.B, bs, name string) func() {
	adm := kadm.NewClient(mustClient(b, bs))
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 6, -1, nil, name); err != nil {
		b.Fatalf("create topic %s: %v", name, err)
	}
	return func() {
		if _, err := adm.DeleteTopic(ctx, name); err != nil {
			b.Fatalf("delete topic %s: %v", name, err)
		}
		adm.Close()
	}
}

func mustClient(b *testing.B, bs string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(splitAddrs(bs)...))
	if err != nil {
		b.Fatal(err)
	}
	return cl
}

// BenchmarkLoadgenVsFranz measures, in one run on one 3-broker embedded
// cluster, the loadgen's highest acknowledged rate (acks=all) against a bare
// franz-go producer's (acks=all, no idempotence) with the same record size:
// once with a constant payload (the cluster's ceiling for a producer that
// builds nothing) and once with kmt records (the same bytes the loadgen
// sends, so the ratio is the client's own cost: pacing, ledger, metrics,
// idempotence). Every producer is timed from creating its client to its
// last acknowledgement, on a fresh topic. A round runs the three, in
// alternating order (forward in even rounds, backward in odd ones, so none
// always follows the same one), and its ratios are taken within the round;
// the table shows the median over the rounds, so a burst of load from
// elsewhere on a shared machine hurts one round, not the figure. It also
// reports the process CPU nanoseconds per acknowledged record of each (the
// brokers run in the process, so compare the figures with each other) and
// the loadgen's rate error at half its measured ceiling. b.N is the records
// per run; BENCH_ROUNDS sets the rounds (default 5).
//
//	go test -run '^$' -bench LoadgenVsFranz -benchtime 300000x ./loadgen
func BenchmarkLoadgenVsFranz(b *testing.B) {
	rounds := testkit.BenchRounds()
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			_, bs := newCluster(b, 3)
			cs := contenders()
			rate := map[string][]float64{}
			cpu := map[string][]float64{}
			var vsFr, vsFk []float64
			for r := range rounds {
				got := map[string]float64{}
				for i := range cs {
					c := cs[i]
					if r%2 == 1 {
						c = cs[len(cs)-1-i]
					}
					topic := fmt.Sprintf("%s%d", c.name, r)
					drop := benchTopic(b, bs, topic)
					wall, used := c.run(b, bs, topic, b.N, size)
					drop()
					got[c.name] = float64(b.N) / wall.Seconds()
					rate[c.name] = append(rate[c.name], got[c.name])
					cpu[c.name] = append(cpu[c.name], float64(used.Nanoseconds())/float64(b.N))
				}
				vsFr = append(vsFr, got["loadgen"]/got["franz"])
				vsFk = append(vsFk, got["loadgen"]/got["franz_kmt_records"])
			}
			b.Logf("size %d, load average %s: loadgen/franz per round %.3f", size, testkit.LoadAverage(), vsFr)
			// Rate accuracy at half the ceiling just measured: 2 s paced.
			half := median(rate["loadgen"]) / 2
			drop := benchTopic(b, bs, "half")
			st, err := Run(context.Background(), Config{
				Bootstrap: bs, Topics: []string{"half"}, RunID: "bench-half", MessageSize: size, Rate: half,
				Streams: benchStreams, Duration: 2 * time.Second, Ledger: ledger.New(), Logger: quiet(),
			})
			drop()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(100*(st.Rate()-half)/half, "rate_err_%_at_half_ceiling")
			b.ReportMetric(median(rate["loadgen"]), "loadgen_msgs/s")
			b.ReportMetric(median(rate["franz"]), "franz_msgs/s")
			b.ReportMetric(median(rate["franz_kmt_records"]), "franz_kmt_records_msgs/s")
			b.ReportMetric(median(vsFr), "loadgen/franz")
			b.ReportMetric(median(vsFk), "loadgen/franz_kmt_records")
			b.ReportMetric(median(cpu["loadgen"]), "loadgen_cpu_ns/rec")
			b.ReportMetric(median(cpu["franz"]), "franz_cpu_ns/rec")
			b.ReportMetric(median(cpu["franz_kmt_records"]), "franz_kmt_records_cpu_ns/rec")
		})
	}
}
