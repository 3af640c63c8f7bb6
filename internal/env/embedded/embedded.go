// Package embedded runs a Kafka-protocol cluster in-process (kfake) with the
// broker faults a scenario needs: kill and restore single brokers, pause
// them, stop and restart the whole cluster from its data directory, and the
// topic operations the harness uses (create, add partitions, purge).
//
// Every broker listens on 127.0.0.1. When Options.Front is set, brokers
// advertise the address Front returns (the WAN proxy) instead of their real
// listener, so clients bootstrapping from Bootstrap() cross the WAN; kmt's own
// clients use DirectDial to reach the real listeners and bypass it.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/lifecycle"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/loopback"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// FrontFunc is called for each broker listener (again after a broker restarts,
// with the same real address) and returns the address to advertise.
type FrontFunc func(realAddr string) (advertised string, err error)

// Options configures Start.
type Options struct {
	Name    string // "source" | "target"; used in logs and errors
	Brokers int    // default 3
	DataDir string // persisted data (cluster restart); caller removes it
	Front   FrontFunc
	Logger  *slog.Logger
}

// node is one broker identity: its id and real port survive kills and
// restarts, its listener and connections do not.
type node struct {
	id         int32
	port       int
	real       string // 127.0.0.1:port
	advertised string
	g          *gate

	mu    sync.Mutex
	alive bool
	conns map[*conn]struct{}
}

func (n *node) track(raw net.Conn) net.Conn {
	c := &conn{Conn: raw, g: n.g, done: make(chan struct{})}
	c.onClose = func(c *conn) {
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
	}
	n.mu.Lock()
	if !n.alive {
		// Accepted in the instant between a kill's listener close and its
		// connection sweep: a dead broker must not keep it.
		n.mu.Unlock()
		_ = raw.Close()
		return c
	}
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	return c
}

// dropConns closes every connection of the node and marks it dead so that a
// straggling Accept is closed as well.
func (n *node) dropConns() int {
	n.mu.Lock()
	n.alive = false
	cs := make([]*conn, 0, len(n.conns))
	for c := range n.conns {
		cs = append(cs, c)
	}
	n.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	return len(cs)
}

// Cluster is one embedded Kafka-protocol cluster.
type Cluster struct {
	o   Options
	log *slog.Logger

	ops lifecycle.Ops // serialises faults and lifecycle changes; remembers Close

	mu      sync.Mutex
	kc      *kfake.Cluster // nil while stopped
	nodes   []*node        // index == node id
	fronts  map[string]string
	pending []int32 // node ids the next listenFn calls are for, in order
	// ctrlLost: the controller broker (kfake fixes it at start: the highest
	// node id) was killed since the last start. kfake never moves the
	// controller, so controller-bound requests (CreatePartitions,
	// CreateTopics) answer NOT_CONTROLLER until the next Restart.
	ctrlLost bool
}

// Start starts a cluster of o.Brokers brokers (default 3) persisting to
// o.DataDir (required: Stop/Restart relies on it).
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Brokers == 0 {
		o.Brokers = 3
	}
	if o.Brokers < 1 {
		return nil, fmt.Errorf("embedded %q: Brokers=%d, want at least 1", o.Name, o.Brokers)
	}
	if o.DataDir == "" {
		return nil, fmt.Errorf("embedded %q: DataDir is empty; give a directory the cluster can persist to (it is needed for Stop/Restart)", o.Name)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{
		o:      o,
		log:    o.Logger.With("cluster", o.Name),
		fronts: make(map[string]string),
	}
	for i := 0; i < o.Brokers; i++ {
		c.nodes = append(c.nodes, &node{id: int32(i), g: newGate(), conns: map[*conn]struct{}{}})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.startKfake(); err != nil {
		return nil, err
	}
	c.log.Info("embedded cluster started", "bootstrap", c.Bootstrap(), "direct", c.realAddrs(), "data_dir", o.DataDir)
	return c, nil
}

// describeTopicPartitionsKey is the DescribeTopicPartitions API (KIP-966).
const describeTopicPartitionsKey = 75

// CleanerBackoff is how often kfake compacts topics with
// cleanup.policy=compact (and applies explicit retention configs).
const CleanerBackoff = 2 * time.Second

// startKfake builds the kfake cluster, on the nodes' previous ports when they
// have them (a restart).
func (c *Cluster) startKfake() error {
	ports := make([]int, len(c.nodes))
	ids := make([]int32, len(c.nodes))
	for i, n := range c.nodes {
		ports[i] = n.port
		ids[i] = n.id
		n.g.set(false)
	}
	c.mu.Lock()
	c.pending = ids
	c.mu.Unlock()
	opts := []kfake.Opt{
		kfake.Ports(ports...), // 0 = pick one; kfake uses len(ports) as the broker count
		kfake.DataDir(c.o.DataDir),
		kfake.ListenFn(c.listen),
		kfake.ClusterID("kmt-" + c.o.Name),
		kfake.WithLogger(slogAdapter{c.log}),
		kfake.DefaultNumPartitions(1),
		// kfake compacts (and applies retention) on this period; its own
		// default is an hour, so a compacted topic would never be cleaned
		// during a run.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": strconv.FormatInt(CleanerBackoff.Milliseconds(), 10)}),
	}
	// DescribeTopicPartitions is not offered: kfake answers it with a null
	// eligible-leader list, on which Kafka's 4.x Java admin client (inside
	// MirrorMaker 2) throws a NullPointerException; without it the Java
	// client falls back to Metadata. kmt's Go clients never use it.
	v := kversion.Stable()
	v.SetMaxKeyVersion(describeTopicPartitionsKey, -1) // -1 removes the key
	opts = append(opts, kfake.MaxVersions(v))
	kc, err := kfake.NewCluster(opts...)
	c.mu.Lock()
	c.pending = nil
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded %q: starting kfake (data dir %s, ports %v): %w; if a port is taken, another process grabbed it while the cluster was down", c.o.Name, c.o.DataDir, ports, err)
	}
	c.mu.Lock()
	c.kc = kc
	c.ctrlLost = false
	c.mu.Unlock()
	return nil
}

// listen is kfake's ListenFn. kfake calls it once per broker in node order in
// NewCluster and once in AddNode; c.pending says which node each call is for.
func (c *Cluster) listen(network, address string) (net.Listener, error) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return nil, fmt.Errorf("embedded %q: unexpected listen on %s (no broker pending)", c.o.Name, address)
	}
	id := c.pending[0]
	c.pending = c.pending[1:]
	n := c.nodes[id]
	c.mu.Unlock()

	_, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("embedded %q: listen address %q: %w", c.o.Name, address, err)
	}
	port, _ := strconv.Atoi(portStr)
	if n.port != 0 {
		port = n.port
	}
	ln, err := net.Listen(network, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("embedded %q: broker %d listen on 127.0.0.1:%d: %w", c.o.Name, id, port, err)
	}
	real := ln.Addr().String()
	adv := real
	if c.o.Front != nil {
		if adv, err = c.o.Front(real); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("embedded %q: front for broker %d (%s): %w", c.o.Name, id, real, err)
		}
	}
	c.mu.Lock()
	n.port = ln.Addr().(*net.TCPAddr).Port
	n.real = real
	n.advertised = adv
	c.fronts[adv] = real
	c.mu.Unlock()
	n.mu.Lock()
	n.alive = true
	n.mu.Unlock()
	return &listener{Listener: ln, n: n}, nil
}

func (c *Cluster) realAddrs() []string { return c.addrs(func(n *node) string { return n.real }) }

// addrs returns one address per broker, in node id order.
func (c *Cluster) addrs(pick func(*node) string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = pick(n)
	}
	return out
}

// Name is the cluster's name from Options.
func (c *Cluster) Name() string { return c.o.Name }

// Bootstrap returns the comma-separated advertised addresses of all brokers.
func (c *Cluster) Bootstrap() string { return strings.Join(c.Brokers(), ",") }

// Brokers returns the advertised address of every broker, in node id order,
// killed ones included (their addresses come back on restore).
func (c *Cluster) Brokers() []string { return c.addrs(func(n *node) string { return n.advertised }) }

// DirectDial dials the broker's real listener when addr is an advertised
// (front) address, so the connection bypasses whatever Front put in between.
// Other addresses are dialled as given, but only on loopback.
func (c *Cluster) DirectDial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	target, ok := c.fronts[addr]
	c.mu.Unlock()
	if !ok {
		target = addr
	}
	conn, err := loopback.Dial(ctx, network, target)
	if err != nil {
		return nil, fmt.Errorf("embedded %q: direct dial %q: %w", c.o.Name, addr, err)
	}
	return conn, nil
}

func (c *Cluster) live() (*kfake.Cluster, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops.Closed() {
		return nil, fmt.Errorf("embedded %q: cluster is closed", c.o.Name)
	}
	if c.kc == nil {
		return nil, fmt.Errorf("embedded %q: cluster is stopped; call Restart first", c.o.Name)
	}
	return c.kc, nil
}

// CreateTopic creates a topic. It goes through kfake's admin path rather than
// a CreateTopics request because kfake's controller is fixed at start: once
// the controller broker has been killed and restored, CreateTopics requests
// answer NOT_CONTROLLER until the cluster restarts.
func (c *Cluster) CreateTopic(ctx context.Context, name string, partitions int) error {
	return c.CreateTopicWithConfigs(ctx, name, partitions, nil)
}

// CreateTopicWithConfigs is CreateTopic with topic configs. kfake honours
// max.message.bytes (a produce request whose records of one partition are
// larger fails MESSAGE_TOO_LARGE) and cleanup.policy=compact: every
// CleanerBackoff it compacts each such partition, all but its last batch
// (kfake's active segment), keeping the last record of every key; it
// ignores segment.ms, segment.bytes, min.cleanable.dirty.ratio and
// min.compaction.lag.ms (stored and described, not applied).
func (c *Cluster) CreateTopicWithConfigs(ctx context.Context, name string, partitions int, configs map[string]string) error {
	kc, err := c.live()
	if err != nil {
		return err
	}
	if partitions < 1 {
		return fmt.Errorf("embedded %q: create topic %q: partitions=%d, want at least 1", c.o.Name, name, partitions)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := kc.CreateTopic(name, int32(partitions), configs); err != nil {
		return fmt.Errorf("embedded %q: create topic %q with %d partitions and configs %v: %w", c.o.Name, name, partitions, configs, err)
	}
	return nil
}

// Partitions returns the topic's partition count, 0 if it does not exist.
func (c *Cluster) Partitions(topic string) int {
	kc, err := c.live()
	if err != nil {
		return 0
	}
	return len(kc.PartitionInfos(topic))
}

// AddPartitions raises the topic's partition count to total with a real
// CreatePartitions request (kafka-go client, direct to the controller).
func (c *Cluster) AddPartitions(ctx context.Context, topic string, total int) error {
	if _, err := c.live(); err != nil {
		return err
	}
	c.mu.Lock()
	lost := c.ctrlLost
	c.mu.Unlock()
	if lost {
		return fmt.Errorf("embedded %q: add partitions to %q: the controller broker %d was killed since the cluster started and kfake never elects another; Stop and Restart the cluster first, or do not kill node %d in scenarios that add partitions", c.o.Name, topic, len(c.Nodes())-1, len(c.Nodes())-1)
	}
	var addrs []string
	for _, id := range c.AliveNodes() {
		addrs = append(addrs, c.Brokers()[id])
	}
	tr, err := kafkaclient.Config{Brokers: addrs, Dial: c.DirectDial, ClientID: "kmt-embedded-admin"}.Transport()
	if err != nil {
		return err
	}
	tr.MetadataTTL = time.Second
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(addrs...), Transport: tr, Timeout: 10 * time.Second}
	resp, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{
		Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: int32(total)}},
	})
	if err != nil {
		return fmt.Errorf("embedded %q: add partitions to %q (total %d): %w; if the controller broker was killed, restart the cluster", c.o.Name, topic, total, err)
	}
	if e := resp.Errors[topic]; e != nil {
		return fmt.Errorf("embedded %q: add partitions to %q (total %d): %w", c.o.Name, topic, total, e)
	}
	return nil
}

// AlterTopicConfigs sets topic configs with a real IncrementalAlterConfigs
// request through the alive brokers (the others keep their values).
func (c *Cluster) AlterTopicConfigs(ctx context.Context, topic string, configs map[string]string) error {
	if _, err := c.live(); err != nil {
		return err
	}
	var addrs []string
	for _, id := range c.AliveNodes() {
		addrs = append(addrs, c.Brokers()[id])
	}
	cl, err := kafkaclient.Config{Brokers: addrs, Dial: c.DirectDial, ClientID: "kmt-embedded-admin"}.NewKgo()
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := kafkaclient.SetTopicConfigs(ctx, kadm.NewClient(cl), topic, configs); err != nil {
		return fmt.Errorf("embedded %q: set configs of topic %q: %w", c.o.Name, topic, err)
	}
	return nil
}

// Purge deletes every record below each partition's high watermark and
// returns the new log start offset per partition.
func (c *Cluster) Purge(ctx context.Context, topic string) (map[int]int64, error) {
	kc, err := c.live()
	if err != nil {
		return nil, err
	}
	infos := kc.PartitionInfos(topic)
	if len(infos) == 0 {
		return nil, fmt.Errorf("embedded %q: purge %q: topic does not exist", c.o.Name, topic)
	}
	for _, pi := range infos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := kc.DeleteRecords(topic, pi.Partition, -1); err != nil {
			return nil, fmt.Errorf("embedded %q: purge %q partition %d: %w", c.o.Name, topic, pi.Partition, err)
		}
	}
	out := make(map[int]int64, len(infos))
	for _, pi := range kc.PartitionInfos(topic) {
		out[int(pi.Partition)] = pi.LogStartOffset
	}
	return out, nil
}

// Nodes returns every node id of the cluster, killed ones included.
func (c *Cluster) Nodes() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int32, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.id
	}
	return out
}

// AliveNodes returns the node ids currently serving.
func (c *Cluster) AliveNodes() []int32 {
	c.mu.Lock()
	stopped := c.kc == nil
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	if stopped {
		return nil
	}
	var out []int32
	for _, n := range nodes {
		n.mu.Lock()
		if n.alive {
			out = append(out, n.id)
		}
		n.mu.Unlock()
	}
	return out
}

// LeaderNodes returns the distinct leader node ids of the topic's partitions
// 0..n-1, in partition order. Missing partitions are skipped.
func (c *Cluster) LeaderNodes(topic string, n int) []int32 {
	kc, err := c.live()
	if err != nil {
		return nil
	}
	var out []int32
	for p := 0; p < n; p++ {
		id := kc.LeaderFor(topic, int32(p))
		if id >= 0 && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (c *Cluster) node(id int32) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id < 0 || int(id) >= len(c.nodes) {
		return nil, fmt.Errorf("embedded %q: no broker with node id %d (nodes 0..%d)", c.o.Name, id, len(c.nodes)-1)
	}
	return c.nodes[id], nil
}

// KillBrokers removes the brokers from the cluster (kfake RemoveNode: their
// partitions get new leaders), closes their listeners and every connection
// they hold. Killing a dead broker is a no-op; killing every live broker is
// an error (kfake cannot run with none: use Stop).
func (c *Cluster) KillBrokers(ids []int32) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	kc, err := c.live()
	if err != nil {
		return err
	}
	alive := c.AliveNodes()
	var kill []*node
	for _, id := range ids {
		n, err := c.node(id)
		if err != nil {
			return err
		}
		if slices.Contains(alive, id) && !slices.ContainsFunc(kill, func(k *node) bool { return k == n }) {
			kill = append(kill, n)
		}
	}
	if len(kill) > 0 && len(kill) >= len(alive) {
		return fmt.Errorf("embedded %q: kill brokers %v would leave none alive (alive %v); kfake needs one, use Stop to take the whole cluster down", c.o.Name, ids, alive)
	}
	for _, n := range kill {
		if err := kc.RemoveNode(n.id); err != nil {
			return fmt.Errorf("embedded %q: kill broker %d: %w", c.o.Name, n.id, err)
		}
		if int(n.id) == len(c.Nodes())-1 {
			c.mu.Lock()
			c.ctrlLost = true
			c.mu.Unlock()
		}
		dropped := n.dropConns()
		c.log.Info("broker killed", "node", n.id, "addr", n.real, "conns_closed", dropped)
	}
	return nil
}

// RestoreBrokers brings killed brokers back with the same node ids and
// ports. Restoring a live broker is a no-op.
func (c *Cluster) RestoreBrokers(ids []int32) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	kc, err := c.live()
	if err != nil {
		return err
	}
	alive := c.AliveNodes()
	for _, id := range ids {
		n, err := c.node(id)
		if err != nil {
			return err
		}
		if slices.Contains(alive, id) {
			continue
		}
		n.g.set(false)
		c.mu.Lock()
		c.pending = []int32{id}
		c.mu.Unlock()
		_, _, err = kc.AddNode(id, n.port)
		c.mu.Lock()
		c.pending = nil
		c.mu.Unlock()
		if err != nil {
			return fmt.Errorf("embedded %q: restore broker %d on port %d: %w", c.o.Name, id, n.port, err)
		}
		alive = append(alive, id)
		c.log.Info("broker restored", "node", id, "addr", n.real)
	}
	return nil
}

// PauseBrokers freezes the brokers' connections: nothing is read or written,
// sockets stay open, new connections are accepted and frozen too.
func (c *Cluster) PauseBrokers(ids []int32) error { return c.setPaused(ids, true) }

// ResumeBrokers lets paused brokers' connections flow again.
func (c *Cluster) ResumeBrokers(ids []int32) error { return c.setPaused(ids, false) }

func (c *Cluster) setPaused(ids []int32, paused bool) error {
	if _, err := c.live(); err != nil {
		return err
	}
	for _, id := range ids {
		n, err := c.node(id)
		if err != nil {
			return err
		}
		n.g.set(paused)
		c.log.Info("broker pause changed", "node", id, "paused", paused)
	}
	return nil
}

// Stop takes the whole cluster down: kfake flushes its state to DataDir,
// every listener and connection closes. Killed brokers and pauses are
// forgotten: Restart brings every broker back, unpaused.
func (c *Cluster) Stop() error {
	c.ops.Lock()
	defer c.ops.Unlock()
	return c.stopLocked()
}

func (c *Cluster) stopLocked() error {
	c.mu.Lock()
	kc := c.kc
	c.kc = nil
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	if kc == nil {
		return nil
	}
	// Open the gates first: a paused connection would otherwise hold a
	// kfake read goroutine while Close waits on the cluster loop.
	for _, n := range nodes {
		n.g.set(false)
	}
	kc.Close()
	for _, n := range nodes {
		n.dropConns()
	}
	c.log.Info("embedded cluster stopped")
	return nil
}

// Restart starts the cluster again from DataDir on the same ports, so
// clients reconnect to the same addresses and find the data acknowledged
// before Stop.
func (c *Cluster) Restart(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	c.mu.Lock()
	closed, running := c.ops.Closed(), c.kc != nil
	c.mu.Unlock()
	if closed {
		return fmt.Errorf("embedded %q: restart: cluster is closed", c.o.Name)
	}
	if running {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.startKfake(); err != nil {
		return err
	}
	c.log.Info("embedded cluster restarted", "bootstrap", c.Bootstrap())
	return nil
}

// Close stops the cluster for good. The data directory stays (the caller
// owns it).
func (c *Cluster) Close() error {
	return c.ops.Close(c.stopLocked)
}

// slogAdapter routes kfake's logs to slog. kfake logs every request at info,
// which is debug material for kmt.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	lv := slog.LevelDebug
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	case kfake.LogLevelNone:
		return
	}
	if !a.l.Enabled(context.Background(), lv) {
		return
	}
	a.l.Log(context.Background(), lv, fmt.Sprintf(format, args...), "component", "kfake")
}
