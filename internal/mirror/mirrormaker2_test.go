package mirror

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// mm2Java is the MirrorMaker 2 command line from the project's Kafka
// distribution (KMT_KAFKA_HOME, or assembled from Maven Central into the
// cache as `make kafka` does); skipped only without java.
func mm2Java(t *testing.T, dir string) []string {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java on PATH")
	}
	dist, err := kafkadist.Find(context.Background(), "", nil)
	if err != nil {
		t.Fatalf("Kafka distribution: %v", err)
	}
	conf := filepath.Join(dir, "mm2-log4j2.properties")
	if err := os.WriteFile(conf, []byte(MM2Log4j2Console), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := dist.Command(kafkadist.JVM{Main: MM2MainClass, Heap: "384m", Props: []string{"-Dlog4j2.configurationFile=" + conf}})
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Args[:len(cmd.Args)-1]
}

func TestMirrorMaker2CopiesBetweenEmbeddedClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	dir := t.TempDir()
	java := mm2Java(t, dir)
	srcC, dstC := embeddedForMM2(t, "source", "orders"), embeddedForMM2(t, "target", "source.orders")
	src, dst := srcC.Bootstrap(), dstC.Bootstrap()
	produce(t, src, "orders", []int{0, 1, 2}, 0, 50)

	reg := prometheus.NewRegistry()
	m, err := NewMirrorMaker2(MM2Config{
		Settings: MM2Settings{SourceBootstrap: src, TargetBootstrap: dst, Topics: []string{"orders"},
			SourceBrokers: 3, TargetBrokers: 3, OffsetFlushInterval: time.Second},
		Java: java, Dir: dir, Registerer: reg, Logger: testLogger(t), MetricsAgent: jmxAgent(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, tt := MM2InternalTopics(MM2Settings{})
	if err := PrecreateTopics(ctx, kafkaclient.Config{Brokers: strings.Split(src, ",")}, st); err != nil {
		t.Fatal(err)
	}
	if err := PrecreateTopics(ctx, kafkaclient.Config{Brokers: strings.Split(dst, ",")}, tt); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "mirrormaker2-1.log"))
			os.WriteFile("/tmp/mm2-failed.log", b, 0o644)
		}
	})
	got := waitTotal(t, dst, "source.orders", 150, 2*time.Minute)
	if n := total(got); n != 150 {
		t.Fatalf("target has %d records, want 150", n)
	}
	// MirrorMaker 2's own count agrees with kmt's read of the target.
	waitFor(t, 30*time.Second, func() bool {
		return m.MetricsSummary()[mm2RecordCount] == 150
	}, func() string {
		return fmt.Sprintf("MirrorMaker 2 counts %v records, want 150", m.MetricsSummary()[mm2RecordCount])
	})
	if !gathered(t, reg, mm2RecordCount) {
		t.Fatalf("%s is not re-exported into kmt's registry", mm2RecordCount)
	}

	// Hard kill: the whole group goes, nothing is lost across the restart.
	pid := m.Process.cur.pgid
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-pid, 0); err == nil {
		t.Fatalf("process group %d still alive after Kill", pid)
	}
	produce(t, src, "orders", []int{0, 1, 2}, 50, 20)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait for 210 distinct records, not 210 records: the restart re-copies
	// from the last committed offsets, and those duplicates can make up the
	// count while a partition's new records are still on their way.
	got = waitDistinct(t, dst, "source.orders", 210, 2*time.Minute)
	seen := values(got)
	for p := 0; p < 3; p++ {
		for i := 0; i < 70; i++ {
			if seen[srcValue(p, i)] == 0 {
				t.Errorf("record p=%d i=%d lost across the hard kill", p, i)
			}
		}
	}
	t.Logf("after kill and restart: %d records at the target for 210 produced", total(got))

	pid = m.Process.cur.pgid
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-pid, 0); err == nil {
		t.Fatalf("process group %d still alive after Close", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, MM2MetricsFile)); err != nil {
		t.Errorf("last metrics scrape not kept: %v", err)
	}
	logs := m.Logs()
	if len(logs) != 2 || !strings.Contains(logs[1], "mirrormaker2-2.log") {
		t.Fatalf("logs %v", logs)
	}
}

// embeddedForMM2 starts an embedded cluster that MirrorMaker 2's Java
// clients can talk to, with topics at 3 partitions.
func embeddedForMM2(t *testing.T, name string, topics ...string) *embedded.Cluster {
	t.Helper()
	ctx := context.Background()
	c, err := embedded.Start(ctx, embedded.Options{Name: name, Brokers: 3, DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, tp := range topics {
		if err := c.CreateTopic(ctx, tp, 3); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// jmxAgent is the Prometheus JMX exporter agent, fetched into the kmt
// cache as a run does.
func jmxAgent(t *testing.T) string {
	root, err := kafkadist.CacheRoot()
	if err != nil {
		t.Fatal(err)
	}
	jar, err := EnsureJMXExporter(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

const mm2RecordCount = "kafka_connect_mirror_mirrorsourceconnector_record_count"

func waitFor(t *testing.T, d time.Duration, ok func() bool, why func() string) {
	t.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) {
			t.Fatal(why())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func gathered(t *testing.T, reg *prometheus.Registry, name string) bool {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mfs {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return true
		}
	}
	return false
}
