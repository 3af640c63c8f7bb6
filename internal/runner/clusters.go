package runner

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/apachekafka"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/wan"
)

// Broker backends of a local run (--brokers).
const (
	BrokersEmbedded = "embedded" // kfake in-process: zero install, the default
	BrokersApache   = "apache"   // real Apache Kafka KRaft clusters as JVMs
)

// localCluster is what a run needs of a cluster kmt started itself, beyond
// the fault capabilities chaos/local discovers on it.
type localCluster interface {
	Bootstrap() string
	DirectDial(ctx context.Context, network, addr string) (net.Conn, error)
	CreateTopicWithConfigs(ctx context.Context, name string, partitions int, configs map[string]string) error
	Close() error
}

// startClusters starts the source (behind the WAN link) and the target on
// the chosen broker backend; each is closed by the run's cleanup.
func (r *run) startLocalClusters(ctx context.Context, link *wan.Link, tmp string) (src, tgt localCluster, err error) {
	sp := &r.s.Spec
	if r.o.Brokers != BrokersApache {
		r.log.Info("starting embedded clusters", "source_brokers", sp.Topology.Source.Brokers, "target_brokers", sp.Topology.Target.Brokers)
		s, err := embedded.Start(ctx, embedded.Options{Name: "source", Brokers: sp.Topology.Source.Brokers, DataDir: filepath.Join(tmp, "source"), Front: link.Front, Logger: r.log})
		if err != nil {
			return nil, nil, Env(fmt.Errorf("start the embedded source cluster: %w", err))
		}
		r.defer_(func() { s.Close() })
		t, err := embedded.Start(ctx, embedded.Options{Name: "target", Brokers: sp.Topology.Target.Brokers, DataDir: filepath.Join(tmp, "target"), Logger: r.log})
		if err != nil {
			return nil, nil, Env(fmt.Errorf("start the embedded target cluster: %w", err))
		}
		r.defer_(func() { t.Close() })
		r.rep.Brokers = BrokersEmbedded
		return s, t, nil
	}
	dist, err := r.distribution(ctx)
	if err != nil {
		return nil, nil, err
	}
	r.log.Info("starting Apache Kafka clusters", "version", dist.Version, "source_brokers", sp.Topology.Source.Brokers, "target_brokers", sp.Topology.Target.Brokers, "logs", r.dir)
	t0 := time.Now()
	// Both clusters start in parallel: JVM start dominates and the two
	// share nothing.
	var s, t *apachekafka.Cluster
	var serr, terr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s, serr = apachekafka.Start(ctx, apachekafka.Options{Name: "source", Brokers: sp.Topology.Source.Brokers, DataDir: filepath.Join(tmp, "source"), LogDir: r.dir, Dist: dist, Front: link.Front, Logger: r.log})
	}()
	go func() {
		defer wg.Done()
		t, terr = apachekafka.Start(ctx, apachekafka.Options{Name: "target", Brokers: sp.Topology.Target.Brokers, DataDir: filepath.Join(tmp, "target"), LogDir: r.dir, Dist: dist, Logger: r.log})
	}()
	wg.Wait()
	if s != nil {
		r.defer_(func() { s.Close() })
	}
	if t != nil {
		r.defer_(func() { t.Close() })
	}
	if serr != nil {
		return nil, nil, Env(fmt.Errorf("start the Apache Kafka source cluster: %w", serr))
	}
	if terr != nil {
		return nil, nil, Env(fmt.Errorf("start the Apache Kafka target cluster: %w", terr))
	}
	r.rep.Brokers = "apache-kafka-" + dist.Version
	r.log.Info("Apache Kafka clusters ready", "took", time.Since(t0).Round(time.Millisecond))
	return s, t, nil
}

// distribution finds (or assembles, once) the Apache Kafka distribution:
// --kafka-home, else $KMT_KAFKA_HOME, else the cached Maven-assembled one.
func (r *run) distribution(ctx context.Context) (*kafkadist.Dist, error) {
	if r.dist != nil {
		return r.dist, nil
	}
	d, err := kafkadist.Find(ctx, r.o.KafkaHome, r.log)
	if err != nil {
		return nil, Env(err)
	}
	r.dist = d
	return d, nil
}
