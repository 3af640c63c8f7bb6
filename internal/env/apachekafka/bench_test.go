package apachekafka_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/apachekafka"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

const (
	benchRecords    = 200_000
	benchSize       = 256
	benchPartitions = 6
)

// BenchmarkVsApacheTools measures, on one real broker in one run, kmt's
// loadgen against Apache Kafka's own ProducerPerformance (same record count
// and size, acks=all, as fast as the broker acknowledges), and the
// validator against ConsumerPerformance reading the same topic. The ratios
// are the numbers to compare; absolute rates depend on the machine.
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
	for _, topic := range []string{"kmt", "apache"} {
		if err := c.CreateTopic(ctx, topic, benchPartitions); err != nil {
			b.Fatal(err)
		}
	}
	boot := c.Bootstrap()
	quiet := slog.New(slog.DiscardHandler)
	for range b.N {
		led := ledger.New()
		runID := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		t0 := time.Now()
		st, err := loadgen.Run(ctx, loadgen.Config{Bootstrap: boot, Dial: c.DirectDial, Topics: []string{"kmt"}, RunID: runID, MessageSize: benchSize, Streams: 16, Count: benchRecords, Ledger: led, Logger: quiet})
		kmtProduce := float64(st.Acked) / time.Since(t0).Seconds()
		if err != nil || st.Acked != benchRecords {
			b.Fatalf("loadgen acked %d of %d: %v", st.Acked, benchRecords, err)
		}
		apacheProduce := producerPerformance(b, dist, boot)

		t0 = time.Now()
		v, err := validator.New(validator.Config{TargetBootstrap: boot, TargetDial: c.DirectDial, Topics: []validator.TopicPair{{Source: "kmt", Target: "kmt"}}, RunID: runID, Ledger: led, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Start(ctx); err != nil {
			b.Fatal(err)
		}
		res, err := v.Drain(ctx, 5*time.Minute)
		if err != nil || res.Counts.Received < benchRecords {
			b.Fatalf("validator received %d of %d: %v", res.Counts.Received, benchRecords, err)
		}
		kmtConsume := float64(res.Counts.Received) / time.Since(t0).Seconds()
		apacheConsume := consumerPerformance(b, dist, boot)

		b.ReportMetric(kmtProduce, "loadgen_msgs/s")
		b.ReportMetric(apacheProduce, "ProducerPerformance_msgs/s")
		b.ReportMetric(kmtProduce/apacheProduce, "loadgen/ProducerPerformance")
		b.ReportMetric(kmtConsume, "validator_msgs/s")
		b.ReportMetric(apacheConsume, "ConsumerPerformance_msgs/s")
		b.ReportMetric(kmtConsume/apacheConsume, "validator/ConsumerPerformance")
	}
}

// ProducerPerformance's summary: "N records sent, X records/sec (...)".
var prodSummary = regexp.MustCompile(`(\d+) records sent, ([0-9.]+) records/sec`)

func producerPerformance(b *testing.B, d *kafkadist.Dist, boot string) float64 {
	out := runTool(b, d, "org.apache.kafka.tools.ProducerPerformance",
		"--topic", "apache", "--num-records", strconv.Itoa(benchRecords), "--record-size", strconv.Itoa(benchSize),
		"--throughput", "-1", "--producer-props", "bootstrap.servers="+boot, "acks=all")
	m := prodSummary.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		b.Fatalf("no summary in ProducerPerformance output:\n%s", out)
	}
	last := m[len(m)-1]
	if last[1] != strconv.Itoa(benchRecords) {
		b.Fatalf("ProducerPerformance sent %s records, want %d", last[1], benchRecords)
	}
	rate, _ := strconv.ParseFloat(last[2], 64)
	return rate
}

// consumerPerformance reads the loadgen's topic (the validator's input) and
// returns fetch.nMsg.sec from its CSV line: the rate without the group
// join (rebalance.time.ms), the kinder number for Apache's tool.
func consumerPerformance(b *testing.B, d *kafkadist.Dist, boot string) float64 {
	out := runTool(b, d, "org.apache.kafka.tools.ConsumerPerformance",
		"--bootstrap-server", boot, "--topic", "kmt", "--num-records", strconv.Itoa(benchRecords), "--timeout", "60000")
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
