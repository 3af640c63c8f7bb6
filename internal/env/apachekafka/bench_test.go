package apachekafka_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/apachekafka"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

const (
	benchPartitions = 6
	benchStreams    = 16
	// consumeRecords are what the validator and ConsumerPerformance read.
	consumeRecords = 200_000
)

// benchSizes are the record sizes and the records per producer run: fewer
// at 1000 B, so a run lasts about as long and the data directory stays small.
var benchSizes = []struct{ size, records int }{{100, 300_000}, {1000, 100_000}}

// benchRounds is BENCH_ROUNDS, default 3 here (every ProducerPerformance
// run starts a JVM).
func benchRounds() int {
	if os.Getenv("BENCH_ROUNDS") != "" {
		return testkit.BenchRounds()
	}
	return 3
}

// BenchmarkVsApacheTools measures, on one real Apache Kafka broker in one
// run, kmt's loadgen against a bare franz-go producer (testkit.FranzProducer:
// acks=all, no idempotence) and Apache Kafka's own ProducerPerformance
// (acks=all, enable.idempotence=false, its other settings at their
// defaults), at 100 B and 1000 B, each run on a fresh 6-partition topic, the
// three in alternating order over the rounds; the ratios are medians of the
// rounds' ratios. The loadgen and the franz-go producer are timed from
// creating their client to the last acknowledgement; ProducerPerformance's
// own figure leaves its JVM's start out (the kinder number for Apache's
// tool). The broker is its own process, so the CPU nanoseconds per record
// reported for the loadgen and the franz-go producer are the clients' own.
// Then the validator against ConsumerPerformance reading the same topic.
// The ratios are the numbers to compare; absolute rates depend on the
// machine. About 3-5 minutes on 2 cores.
//
//	go test -run '^$' -bench VsApacheTools -benchtime 1x ./internal/env/apachekafka
func BenchmarkVsApacheTools(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dist, err := kafkadist.Find(ctx, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := apachekafka.Start(ctx, apachekafka.Options{Name: "bench", Brokers: 1, DataDir: b.TempDir(), Dist: dist, Heap: "1g", FullJIT: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, sz := range benchSizes {
		b.Run(fmt.Sprintf("produce/size=%d", sz.size), func(b *testing.B) {
			benchProduce(ctx, b, c, dist, sz.size, sz.records)
		})
	}
	b.Run("consume", func(b *testing.B) { benchConsume(ctx, b, c, dist) })
}

// producerRun is one contender: it writes n records of size bytes to topic
// and returns its rate and, for the Go clients, the process CPU time.
type producerRun func(topic string, n, size int) (rate float64, cpu time.Duration)

func benchProduce(ctx context.Context, b *testing.B, c *apachekafka.Cluster, dist *kafkadist.Dist, size, n int) {
	boot := c.Bootstrap()
	keys := make([][]byte, benchStreams)
	for s := range keys {
		keys[s] = wire.Key(uint32(s))
	}
	names := []string{"loadgen", "franz", "ProducerPerformance"}
	runs := map[string]producerRun{
		"loadgen": func(topic string, n, size int) (float64, time.Duration) {
			cpu0, t0 := testkit.ProcessCPU(), time.Now()
			st, err := loadgen.Run(ctx, loadgen.Config{Bootstrap: boot, Dial: c.DirectDial, Topics: []string{topic}, RunID: "bench-" + topic,
				MessageSize: size, Streams: benchStreams, Count: int64(n), Ledger: ledger.New(), Logger: slog.New(slog.DiscardHandler), SkipRunIDCheck: true})
			rate, cpu := float64(st.Acked)/time.Since(t0).Seconds(), testkit.ProcessCPU()-cpu0
			if err != nil || st.Acked != uint64(n) {
				b.Fatalf("loadgen acked %d of %d: %v", st.Acked, n, err)
			}
			return rate, cpu
		},
		"franz": func(topic string, n, size int) (float64, time.Duration) {
			wall, cpu, err := testkit.FranzProducer{Brokers: c.Brokers(), Dial: c.DirectDial, Topic: topic, Keys: keys, Size: size}.Produce(n)
			if err != nil {
				b.Fatal(err)
			}
			return float64(n) / wall.Seconds(), cpu
		},
		"ProducerPerformance": func(topic string, n, size int) (float64, time.Duration) {
			return producerPerformance(b, dist, boot, topic, n, size), 0
		},
	}
	rate, cpu := map[string][]float64{}, map[string][]float64{}
	var vsFranz, vsPP []float64
	for r := range benchRounds() {
		got := map[string]float64{}
		for i := range names {
			name := names[i]
			if r%2 == 1 {
				name = names[len(names)-1-i]
			}
			topic := fmt.Sprintf("%s-%d-%d", name, size, r)
			if err := c.CreateTopic(ctx, topic, benchPartitions); err != nil {
				b.Fatal(err)
			}
			rt, used := runs[name](topic, n, size)
			got[name], rate[name] = rt, append(rate[name], rt)
			if used > 0 {
				cpu[name] = append(cpu[name], float64(used.Nanoseconds())/float64(n))
			}
		}
		vsFranz = append(vsFranz, got["loadgen"]/got["franz"])
		vsPP = append(vsPP, got["loadgen"]/got["ProducerPerformance"])
	}
	b.Logf("size %d, load average %s: loadgen/franz %.3f, loadgen/ProducerPerformance %.3f", size, testkit.LoadAverage(), vsFranz, vsPP)
	for _, name := range names {
		b.ReportMetric(median(rate[name]), name+"_msgs/s")
	}
	b.ReportMetric(median(vsFranz), "loadgen/franz")
	b.ReportMetric(median(vsPP), "loadgen/ProducerPerformance")
	b.ReportMetric(median(cpu["loadgen"]), "loadgen_cpu_ns/rec")
	b.ReportMetric(median(cpu["franz"]), "franz_cpu_ns/rec")
}

// benchConsume writes consumeRecords records of 100 B with the loadgen, then
// reads them with the validator (timed from New to the last record
// verified) and with ConsumerPerformance (its fetch rate), in alternating
// order over the rounds.
func benchConsume(ctx context.Context, b *testing.B, c *apachekafka.Cluster, dist *kafkadist.Dist) {
	const topic = "consume"
	if err := c.CreateTopic(ctx, topic, benchPartitions); err != nil {
		b.Fatal(err)
	}
	boot, quiet := c.Bootstrap(), slog.New(slog.DiscardHandler)
	led := ledger.New()
	runID := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	st, err := loadgen.Run(ctx, loadgen.Config{Bootstrap: boot, Dial: c.DirectDial, Topics: []string{topic}, RunID: runID, MessageSize: 100,
		Streams: benchStreams, Count: consumeRecords, Ledger: led, Logger: quiet, SkipRunIDCheck: true})
	if err != nil || st.Acked != consumeRecords {
		b.Fatalf("loadgen acked %d of %d: %v", st.Acked, consumeRecords, err)
	}
	var val, cp, ratio, valCPU []float64
	for r := range benchRounds() {
		for k := range 2 {
			if (r+k)%2 == 1 {
				cp = append(cp, consumerPerformance(b, dist, boot, topic, consumeRecords))
				continue
			}
			cpu0, t0 := testkit.ProcessCPU(), time.Now()
			v, err := validator.New(validator.Config{TargetBootstrap: boot, TargetDial: c.DirectDial, Topics: []validator.TopicPair{{Source: topic, Target: topic}}, RunID: runID, Ledger: led, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			if err := v.Start(ctx); err != nil {
				b.Fatal(err)
			}
			for v.Live().Received < consumeRecords && time.Since(t0) < 5*time.Minute {
				time.Sleep(time.Millisecond)
			}
			val = append(val, consumeRecords/time.Since(t0).Seconds())
			valCPU = append(valCPU, float64((testkit.ProcessCPU()-cpu0).Nanoseconds())/consumeRecords)
			res, err := v.Drain(ctx, 5*time.Minute)
			if err != nil || res.Counts.Received != consumeRecords || res.Counts.Lost != 0 {
				b.Fatalf("validator: %+v, %v", res.Counts, err)
			}
		}
		ratio = append(ratio, val[len(val)-1]/cp[len(cp)-1])
	}
	b.Logf("load average %s: validator/ConsumerPerformance %.3f", testkit.LoadAverage(), ratio)
	b.ReportMetric(median(val), "validator_msgs/s")
	b.ReportMetric(median(cp), "ConsumerPerformance_msgs/s")
	b.ReportMetric(median(ratio), "validator/ConsumerPerformance")
	b.ReportMetric(median(valCPU), "validator_cpu_ns/rec")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// ProducerPerformance's summary: "N records sent, X records/sec (...)".
var prodSummary = regexp.MustCompile(`(\d+) records sent, ([0-9.]+) records/sec`)

func producerPerformance(b *testing.B, d *kafkadist.Dist, boot, topic string, n, size int) float64 {
	out := runTool(b, d, "org.apache.kafka.tools.ProducerPerformance",
		"--topic", topic, "--num-records", strconv.Itoa(n), "--record-size", strconv.Itoa(size),
		"--throughput", "-1", "--producer-props", "bootstrap.servers="+boot, "acks=all", "enable.idempotence=false")
	m := prodSummary.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		b.Fatalf("no summary in ProducerPerformance output:\n%s", out)
	}
	last := m[len(m)-1]
	if last[1] != strconv.Itoa(n) {
		b.Fatalf("ProducerPerformance sent %s records, want %d", last[1], n)
	}
	rate, _ := strconv.ParseFloat(last[2], 64)
	return rate
}

// consumerPerformance reads the loadgen's topic (the validator's input) and
// returns fetch.nMsg.sec from its CSV line: the rate without the group
// join (rebalance.time.ms), the kinder number for Apache's tool.
func consumerPerformance(b *testing.B, d *kafkadist.Dist, boot, topic string, n int) float64 {
	out := runTool(b, d, "org.apache.kafka.tools.ConsumerPerformance",
		"--bootstrap-server", boot, "--topic", topic, "--num-records", strconv.Itoa(n), "--timeout", "60000")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var header, values []string
	for i, l := range lines {
		if strings.HasPrefix(l, "start.time") && i+1 < len(lines) {
			header, values = strings.Split(l, ","), strings.Split(lines[i+1], ",")
		}
	}
	for i, h := range header {
		if strings.TrimSpace(h) == "fetch.nMsg.sec" && i < len(values) {
			rate, err := strconv.ParseFloat(strings.TrimSpace(values[i]), 64)
			if err == nil {
				return rate
			}
		}
	}
	b.Fatalf("no fetch.nMsg.sec in ConsumerPerformance output:\n%s", out)
	return 0
}

func runTool(b *testing.B, d *kafkadist.Dist, main string, args ...string) string {
	cmd, err := d.Command(kafkadist.JVM{Main: main, Heap: "512m", Args: args})
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", main, err, out.String())
	}
	return out.String()
}
