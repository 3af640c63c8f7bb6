package apachekafka

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
)

var bootMu sync.Mutex // one formatter at a time per process

// bootstrapCheckpoint returns the bootstrap metadata Kafka's storage tool
// writes (bootstrap.checkpoint: the metadata.version and feature levels of
// the release; no cluster or node id), formatting a scratch node once per
// version and caching the file in the kmt cache.
func bootstrapCheckpoint(ctx context.Context, d *kafkadist.Dist, timeout time.Duration) ([]byte, error) {
	bootMu.Lock()
	defer bootMu.Unlock()
	root, err := kafkadist.CacheRoot()
	if err != nil {
		return nil, err
	}
	cached := filepath.Join(root, "kafka-"+d.Version, "bootstrap.checkpoint")
	if b, err := os.ReadFile(cached); err == nil && len(b) > 0 {
		return b, nil
	}
	scratch, err := os.MkdirTemp("", "kmt-kafka-format-")
	if err != nil {
		return nil, fmt.Errorf("format scratch folder: %w", err)
	}
	defer os.RemoveAll(scratch)
	props := filepath.Join(scratch, "server.properties")
	conf := "process.roles=broker,controller\nnode.id=0\ncontroller.quorum.voters=0@127.0.0.1:1\n" +
		"listeners=CLIENT://127.0.0.1:0,CONTROLLER://127.0.0.1:1\ncontroller.listener.names=CONTROLLER\n" +
		"inter.broker.listener.name=CLIENT\nlistener.security.protocol.map=CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT\n" +
		"log.dirs=" + filepath.Join(scratch, "data") + "\n"
	if err := os.WriteFile(props, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd, err := d.Command(kafkadist.JVM{Main: "kafka.tools.StorageTool", Heap: "128m", QuickStart: true,
		Args: []string{"format", "--cluster-id=AAAAAAAAAAAAAAAAAAAAAA", "-c", props}})
	if err != nil {
		return nil, err
	}
	out, err := runCollect(ctx, cmd, timeout)
	if err != nil {
		return nil, fmt.Errorf("format storage with Kafka %s's StorageTool: %w: %s", d.Version, err, tail(out, 800))
	}
	b, err := os.ReadFile(filepath.Join(scratch, "data", "bootstrap.checkpoint"))
	if err != nil {
		return nil, fmt.Errorf("StorageTool of Kafka %s wrote no bootstrap.checkpoint: %w: %s", d.Version, err, tail(out, 800))
	}
	// Cache it atomically; a failure to cache only costs the next run a format.
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err == nil {
		tmp := cached + ".tmp"
		if os.WriteFile(tmp, b, 0o644) == nil {
			_ = os.Rename(tmp, cached)
		}
	}
	return b, nil
}
