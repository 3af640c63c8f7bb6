package apachekafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
)

// One real source and one real target cluster (one broker each) for the
// whole test binary, for tests that need running Apache Kafka but not a
// fresh one: no broker fault, no WAN, no cluster-wide setting, only topics
// (and groups, transactional ids) of their own. A one-broker pair costs
// 4-7 s of JVM start on 2 cores (30 s at load 40) for every test that
// starts its own; this pair is started by the first test that asks and
// closed by TestMain after the last test, which also fails the binary if a
// JVM of it survives. From package apachekafka_test too:
//
//	src, tgt := apachekafka.SharedPair(t)
//	topic := apachekafka.UniqueTopic(t, "orders")
//
// A test that kills, pauses, restarts or reconfigures brokers, or needs a
// WAN front, starts its own (start in cluster_test.go, or runner.Run).
var shared struct {
	once     sync.Once
	src, tgt *Cluster
	dir      string
	err      error
}

// SharedPair returns the binary's shared source and target clusters,
// starting them on first use.
func SharedPair(t testing.TB) (src, tgt *Cluster) {
	t.Helper()
	shared.once.Do(startShared)
	if shared.err != nil {
		t.Fatalf("the shared Apache Kafka pair did not start: %v", shared.err)
	}
	return shared.src, shared.tgt
}

func startShared() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := kafkadist.Find(ctx, "", nil)
	if err != nil {
		shared.err = fmt.Errorf("no Apache Kafka distribution: %w", err)
		return
	}
	dir, err := os.MkdirTemp("", "kmt-shared-pair-")
	if err != nil {
		shared.err = err
		return
	}
	shared.dir = dir
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Both in parallel: JVM start dominates and the two share nothing.
	var wg sync.WaitGroup
	var serr, terr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		shared.src, serr = Start(ctx, Options{Name: "shared-source", Brokers: 1, DataDir: dir + "/source", LogDir: dir, Dist: d, Logger: log})
	}()
	go func() {
		defer wg.Done()
		shared.tgt, terr = Start(ctx, Options{Name: "shared-target", Brokers: 1, DataDir: dir + "/target", LogDir: dir, Dist: d, Logger: log})
	}()
	wg.Wait()
	shared.err = errors.Join(serr, terr)
}

// closeShared stops the shared pair (when it was started), checks that
// none of its JVMs survive and removes its folder.
func closeShared() error {
	var errs []error
	for _, c := range []*Cluster{shared.src, shared.tgt} {
		if c == nil {
			continue
		}
		pids := c.Pids()
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", c.Name(), err))
		}
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				errs = append(errs, fmt.Errorf("JVM pid %d of %s still exists after Close", pid, c.Name()))
			}
		}
	}
	if shared.dir != "" {
		if err := os.RemoveAll(shared.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TestMain runs the tests, then takes the shared pair down.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := closeShared(); err != nil {
		fmt.Fprintf(os.Stderr, "shared Apache Kafka pair: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

var topicSeq atomic.Int64

// Only letters, digits and dashes: Kafka warns that "." and "_" collide in
// metric names.
var notTopicChars = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

// UniqueTopic names a topic (or group, or transactional id) no other test
// of the binary uses on the shared pair: base, the test's name and a
// sequence number.
func UniqueTopic(t testing.TB, base string) string {
	name := notTopicChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	return fmt.Sprintf("%s-%s-%d", base, name, topicSeq.Add(1))
}
