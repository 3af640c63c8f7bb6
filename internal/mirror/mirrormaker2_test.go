package mirror

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kversion"
)

// mm2Java finds a Kafka distribution's libs (KMT_KAFKA_HOME, or the
// assembled cache) and java; the test is skipped without them.
func mm2Java(t *testing.T, dir string) []string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java on PATH")
	}
	libs := ""
	if h := os.Getenv("KMT_KAFKA_HOME"); h != "" {
		libs = filepath.Join(h, "libs")
	} else {
		home, _ := os.UserHomeDir()
		m, _ := filepath.Glob(filepath.Join(home, ".cache", "kmt", "kafka-*", "libs", "connect-mirror-*.jar"))
		sort.Strings(m)
		if len(m) > 0 {
			libs = filepath.Dir(m[len(m)-1])
		}
	}
	if libs == "" {
		t.Skip("no Kafka distribution (KMT_KAFKA_HOME or ~/.cache/kmt/kafka-<v>/libs)")
	}
	conf := filepath.Join(dir, "mm2-log4j2.properties")
	if err := os.WriteFile(conf, []byte(MM2Log4j2Console), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{java, "-Xmx384m", "-Dlog4j2.configurationFile=" + conf, "-cp", filepath.Join(libs, "*")}
}

func TestMirrorMaker2CopiesBetweenEmbeddedClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	dir := t.TempDir()
	java := mm2Java(t, dir)
	src := javaFriendlyCluster(t, "orders")
	dst := javaFriendlyCluster(t)
	produce(t, src, "orders", []int{0, 1, 2}, 0, 50)

	reg := prometheus.NewRegistry()
	m, err := NewMirrorMaker2(MM2Config{
		Settings: MM2Settings{SourceBootstrap: src, TargetBootstrap: dst, Topics: []string{"orders"},
			SourceBrokers: 3, TargetBrokers: 3, OffsetFlushInterval: time.Second},
		Java: java, Dir: dir, Registerer: reg, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, tt := MM2InternalTopics(MM2Settings{})
	tt = append(tt, MM2Topic{Name: "source.orders", Partitions: 3})
	if err := PrecreateTopics(ctx, strings.Split(src, ","), nil, st); err != nil {
		t.Fatal(err)
	}
	if err := PrecreateTopics(ctx, strings.Split(dst, ","), nil, tt); err != nil {
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
	pid := m.Process.cur.pgid
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-pid, 0); err == nil {
		t.Fatalf("process group %d still alive after Close", pid)
	}
	logs := m.Logs()
	if len(logs) != 1 || !strings.Contains(logs[0], "mirrormaker2-1.log") {
		t.Fatalf("logs %v", logs)
	}
}

// javaFriendlyCluster is a 3-broker kfake cluster that does not offer
// DescribeTopicPartitions: kfake answers it with a null eligible-leader
// list, on which Kafka 4.x's admin client throws a NullPointerException.
func javaFriendlyCluster(t *testing.T, topics ...string) string {
	t.Helper()
	v := kversion.Stable()
	v.SetMaxKeyVersion(75, -1)
	opts := []kfake.Opt{kfake.NumBrokers(3), kfake.MaxVersions(v)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(3, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}
