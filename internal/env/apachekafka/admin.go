package apachekafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)

// admin returns a franz-go admin client that reaches the brokers' real
// client listeners (never the WAN). Each call gets its own: a client kept
// across kills and restarts would carry stale connections into the next
// fault.
func (c *Cluster) admin() (*kadm.Client, func(), error) {
	cl, err := kafkaclient.Config{Brokers: c.direct(), Dial: c.DirectDial, ClientID: "kmt-apache-admin"}.NewKgo(
		kgo.RetryTimeout(30 * time.Second),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("apache kafka %q: admin client: %w", c.o.Name, err)
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// waitRegistered polls metadata until every node in ids is a registered,
// unfenced broker. A JVM that exits meanwhile fails the wait at once with
// the end of its log.
func (c *Cluster) waitRegistered(ctx context.Context, ids []int32) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.ReadyTimeout)
	defer cancel()
	began := time.Now()
	var last error
	for {
		if err := c.exitedNode(ids); err != nil {
			return err
		}
		md, err := c.brokerMetadata(ctx)
		if err == nil {
			var missing []int32
			for _, id := range ids {
				if !slices.ContainsFunc(md.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == id }) {
					missing = append(missing, id)
				}
			}
			if len(missing) == 0 {
				return nil
			}
			last = fmt.Errorf("brokers %v not registered yet (metadata lists %v)", missing, md.Brokers.NodeIDs())
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			// The caller's deadline may be shorter than ReadyTimeout: say
			// how long was really waited.
			return fmt.Errorf("apache kafka %q: brokers %v not ready after %v (last: %v); see the broker logs in %s", c.o.Name, ids, time.Since(began).Round(100*time.Millisecond), last, c.o.LogDir)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// brokerMetadata asks for the registered brokers with a fresh client: a
// kept one answers from its own metadata cache, which would hide a broker
// registering later.
func (c *Cluster) brokerMetadata(ctx context.Context) (kadm.Metadata, error) {
	adm, done, err := c.admin()
	if err != nil {
		return kadm.Metadata{}, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return adm.BrokerMetadata(ctx)
}

// exitedNode fails when a JVM among ids has exited.
func (c *Cluster) exitedNode(ids []int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		p := c.procs[id]
		if p == nil {
			continue
		}
		if done, err := p.Exited(); done {
			log, _ := os.ReadFile(c.logFile(c.nodes[id]) + ".out")
			full, _ := os.ReadFile(c.logFile(c.nodes[id]))
			return fmt.Errorf("apache kafka %q: broker %d exited during start (%v): %s%s", c.o.Name, id, err, tail(log, 600), tail(full, 1200))
		}
	}
	return nil
}

// CreateTopic creates a topic with the cluster's default replication factor
// (min(3, brokers)).
func (c *Cluster) CreateTopic(ctx context.Context, name string, partitions int) error {
	return c.CreateTopicWithConfigs(ctx, name, partitions, nil)
}

// CreateTopicWithConfigs is CreateTopic with topic configs (the broker
// checks them: an invalid one fails the creation with its message).
func (c *Cluster) CreateTopicWithConfigs(ctx context.Context, name string, partitions int, configs map[string]string) error {
	if partitions < 1 {
		return fmt.Errorf("apache kafka %q: create topic %q: partitions=%d, want at least 1", c.o.Name, name, partitions)
	}
	adm, done, err := c.admin()
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, kafkaclient.ConfigPtrs(configs), name)
	if err == nil {
		err = resp.Err
		if err != nil && resp.ErrMessage != "" {
			err = fmt.Errorf("%w (%s)", err, resp.ErrMessage)
		}
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		err = sameTopic(ctx, adm, name, partitions)
	}
	if err != nil {
		return fmt.Errorf("apache kafka %q: create topic %q with %d partitions and configs %v: %w", c.o.Name, name, partitions, configs, err)
	}
	return nil
}

// sameTopic accepts a topic that already exists when it has the partitions
// asked for. On a slow machine the client's first CreateTopics can time out
// after the controller created the topic; its retry then answers
// TOPIC_ALREADY_EXISTS for the topic this very call made (seen on a 2-core
// machine at load 26: a run failed before its load started).
func sameTopic(ctx context.Context, adm *kadm.Client, name string, partitions int) error {
	td, err := adm.ListTopics(ctx, name)
	if err != nil {
		return fmt.Errorf("it already exists and describing it failed: %w", err)
	}
	t, ok := td[name]
	if !ok || t.Err != nil {
		return fmt.Errorf("it already exists but is not described (%v)", t.Err)
	}
	if len(t.Partitions) != partitions {
		return fmt.Errorf("it already exists with %d partitions, not %d: %w", len(t.Partitions), partitions, kerr.TopicAlreadyExists)
	}
	return nil
}

// AlterTopicConfigs sets topic configs (IncrementalAlterConfigs; the
// others keep their values).
func (c *Cluster) AlterTopicConfigs(ctx context.Context, topic string, configs map[string]string) error {
	adm, done, err := c.admin()
	if err != nil {
		return err
	}
	defer done()
	if err := kafkaclient.SetTopicConfigs(ctx, adm, topic, configs); err != nil {
		return fmt.Errorf("apache kafka %q: set configs of topic %q: %w", c.o.Name, topic, err)
	}
	return nil
}

// AddPartitions raises the topic's partition count to total (CreatePartitions).
func (c *Cluster) AddPartitions(ctx context.Context, topic string, total int) error {
	adm, done, err := c.admin()
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.UpdatePartitions(ctx, total, topic)
	if err == nil {
		var r kadm.CreatePartitionsResponse
		r, err = resp.On(topic, nil)
		if err == nil {
			err = r.Err
		}
	}
	if err != nil {
		return fmt.Errorf("apache kafka %q: add partitions to %q (total %d): %w", c.o.Name, topic, total, err)
	}
	// The controller accepted; brokers learn the new partitions a moment
	// later. Return once every partition has a leader, so what follows
	// (a purge, a produce) sees them.
	return retry(ctx, 30*time.Second, func() error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		n := 0
		for _, p := range md.Topics[topic].Partitions {
			if p.Leader >= 0 && p.Err == nil {
				n++
			}
		}
		if n < total {
			return fmt.Errorf("apache kafka %q: %q has %d of %d partitions with a leader", c.o.Name, topic, n, total)
		}
		return nil
	})
}

// retry calls f until it succeeds or limit (or ctx) ends, returning its
// last error.
func retry(ctx context.Context, limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Purge deletes every record below each partition's high watermark
// (DeleteRecords, what retention does) and returns the new log start offset
// per partition.
func (c *Cluster) Purge(ctx context.Context, topic string) (map[int]int64, error) {
	adm, done, err := c.admin()
	if err != nil {
		return nil, err
	}
	defer done()
	// A partition just added or just moved answers UNKNOWN_TOPIC_OR_PARTITION
	// for a moment: retry the listing briefly.
	var ends kadm.ListedOffsets
	err = retry(ctx, 30*time.Second, func() error {
		var err error
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apache kafka %q: purge %q: list end offsets: %w", c.o.Name, topic, err)
	}
	if len(ends[topic]) == 0 {
		return nil, fmt.Errorf("apache kafka %q: purge %q: topic does not exist", c.o.Name, topic)
	}
	resp, err := adm.DeleteRecords(ctx, ends.Offsets())
	if err != nil {
		return nil, fmt.Errorf("apache kafka %q: purge %q: delete records: %w", c.o.Name, topic, err)
	}
	out := map[int]int64{}
	var errs []error
	resp.Each(func(r kadm.DeleteRecordsResponse) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", r.Partition, r.Err))
			return
		}
		out[int(r.Partition)] = r.LowWatermark
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("apache kafka %q: purge %q: %w", c.o.Name, topic, err)
	}
	return out, nil
}

// LeaderNodes returns the distinct leader node ids of the topic's
// partitions 0..n-1, in partition order (partitions without a leader are
// skipped).
func (c *Cluster) LeaderNodes(topic string, n int) []int32 {
	adm, done, err := c.admin()
	if err != nil {
		return nil
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		c.log.Warn("leader lookup failed", "topic", topic, "err", err)
		return nil
	}
	var out []int32
	parts := md.Topics[topic].Partitions
	for p := 0; p < n; p++ {
		d, ok := parts[int32(p)]
		if ok && d.Leader >= 0 && !slices.Contains(out, d.Leader) {
			out = append(out, d.Leader)
		}
	}
	return out
}

// runCollect runs cmd (own process group) to completion within timeout,
// killing the group when ctx ends, and returns its combined output.
func runCollect(ctx context.Context, cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	return out.Bytes(), fmt.Errorf("killed: did not finish in time (%v)", context.Cause(ctx))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}
