// Package apachekafka runs real Apache Kafka KRaft clusters as JVM processes
// on loopback (the "apache" broker backend of `kmt run`), with the broker
// faults a scenario needs performed for real: SIGKILL and restart on the same
// data folder, SIGSTOP/SIGCONT, whole-cluster stop and restart, and topic
// operations through the admin API.
//
// Each node is a combined broker+controller in a static quorum, with three
// listeners (CLIENT, INTERNAL, CONTROLLER). Only CLIENT advertises Front's
// address (the WAN on the source), so replication and the quorum never
// cross the WAN; kmt's own clients use DirectDial to reach CLIENT directly.
package apachekafka

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/lifecycle"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/loopback"
)

// FrontFunc returns the address to advertise for a broker's client
// listener (the WAN front); called again with the same address after a
// broker restart.
type FrontFunc func(realAddr string) (advertised string, err error)

// Options configures Start.
type Options struct {
	Name    string // "source" | "target": logs, errors, file names
	Brokers int    // default 3
	DataDir string // required; every node's config and log live here; the caller removes it
	LogDir  string // broker logs (<name>-<id>.log); default DataDir
	Dist    *kafkadist.Dist
	Front   FrontFunc
	Heap    string // per node -Xmx; default 384m
	// FullJIT runs the brokers with both JIT compilers (benchmarks). By
	// default they stop at C1: far less compile work while starting on a
	// busy 2-core machine, plenty for the rates scenarios produce.
	FullJIT bool
	// ReadyTimeout bounds start and restart (JVM start on a loaded 2-core
	// machine is slow); default 4 minutes.
	ReadyTimeout time.Duration
	// StopGrace is how long SIGTERM gets before SIGKILL in Stop (the
	// cluster-restart fault); default 10s. Close, at the end of a run,
	// gives CloseGrace (default 3s): the data is thrown away anyway, and
	// combined nodes stopped together lose their quorum and never finish a
	// controlled shutdown.
	StopGrace  time.Duration
	CloseGrace time.Duration
	Extra      map[string]string // server.properties overrides
	Logger     *slog.Logger
}

// Cluster is a running (or stopped) real Kafka cluster.
type Cluster struct {
	o     Options
	log   *slog.Logger
	id    string // KRaft cluster id
	nodes []*node

	ops lifecycle.Ops // serialises faults and lifecycle changes; remembers Close

	mu     sync.Mutex
	procs  []*kafkadist.Proc // index == node id; nil while down
	paused map[int32]bool
	fronts map[string]string // advertised -> real client address
}

// Start formats and starts o.Brokers nodes in parallel (none reports ready
// until a quorum majority runs) and returns once every broker is registered
// and serving metadata. On error everything started is stopped again.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if err := defaults(&o); err != nil {
		return nil, err
	}
	c := &Cluster{o: o, log: o.Logger.With("cluster", o.Name), paused: map[int32]bool{}, fronts: map[string]string{}}
	if err := c.layout(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := c.format(ctx); err != nil {
		return nil, err
	}
	c.procs = make([]*kafkadist.Proc, len(c.nodes))
	if err := c.startNodes(ctx, c.Nodes()); err != nil {
		_ = c.Close()
		return nil, err
	}
	c.log.Info("apache kafka cluster started", "bootstrap", c.Bootstrap(), "direct", c.direct(), "took", time.Since(t0).Round(time.Millisecond), "data_dir", o.DataDir)
	return c, nil
}

func defaults(o *Options) error {
	if o.Brokers == 0 {
		o.Brokers = 3
	}
	if o.Brokers < 1 {
		return fmt.Errorf("apache kafka %q: Brokers=%d, want at least 1", o.Name, o.Brokers)
	}
	if o.DataDir == "" {
		return fmt.Errorf("apache kafka %q: DataDir is empty; give a folder for the nodes' data", o.Name)
	}
	if o.Dist == nil {
		return fmt.Errorf("apache kafka %q: no distribution (kafkadist.Find)", o.Name)
	}
	if o.LogDir == "" {
		o.LogDir = o.DataDir
	}
	if o.Heap == "" {
		o.Heap = "384m"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 4 * time.Minute
	}
	if o.StopGrace == 0 {
		o.StopGrace = 10 * time.Second
	}
	if o.CloseGrace == 0 {
		o.CloseGrace = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// layout picks ports and fronts and writes every node's server.properties.
func (c *Cluster) layout() error {
	n := c.o.Brokers
	ports, err := freePorts(3 * n)
	if err != nil {
		return fmt.Errorf("apache kafka %q: %w", c.o.Name, err)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	c.id = base64.RawURLEncoding.EncodeToString(raw[:])
	for i := range n {
		nd := &node{
			id:         int32(i),
			client:     fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			internal:   fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			controller: fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
			dir:        filepath.Join(c.o.DataDir, fmt.Sprintf("node-%d", i)),
		}
		nd.advertised = nd.client
		if c.o.Front != nil {
			if nd.advertised, err = c.o.Front(nd.client); err != nil {
				return fmt.Errorf("apache kafka %q: front for broker %d (%s): %w", c.o.Name, i, nd.client, err)
			}
		}
		c.fronts[nd.advertised] = nd.client
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return fmt.Errorf("apache kafka %q: create %s: %w", c.o.Name, nd.dir, err)
		}
		props := serverProperties(nd, c.nodes, c.o.Extra)
		if err := os.WriteFile(c.propsFile(nd), []byte(props), 0o644); err != nil {
			return fmt.Errorf("apache kafka %q: write %s: %w", c.o.Name, c.propsFile(nd), err)
		}
	}
	return os.MkdirAll(c.o.LogDir, 0o755)
}

func (c *Cluster) propsFile(n *node) string { return filepath.Join(n.dir, "server.properties") }
func (c *Cluster) logFile(n *node) string {
	return filepath.Join(c.o.LogDir, fmt.Sprintf("%s-broker-%d.log", c.o.Name, n.id))
}

// format prepares every node's log folder as Kafka's storage tool would:
// the bootstrap metadata (the same for every node of a version, formatted
// once and cached) and a meta.properties naming the cluster, the node and
// a fresh directory id. One storage-tool JVM per node cost 10+ s of wall
// time per cluster on a loaded 2-core machine.
func (c *Cluster) format(ctx context.Context) error {
	boot, err := bootstrapCheckpoint(ctx, c.o.Dist, c.o.ReadyTimeout)
	if err != nil {
		return fmt.Errorf("apache kafka %q: %w", c.o.Name, err)
	}
	for _, nd := range c.nodes {
		data := filepath.Join(nd.dir, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			return fmt.Errorf("apache kafka %q: %w", c.o.Name, err)
		}
		if err := os.WriteFile(filepath.Join(data, "bootstrap.checkpoint"), boot, 0o644); err != nil {
			return fmt.Errorf("apache kafka %q: write bootstrap metadata of node %d: %w", c.o.Name, nd.id, err)
		}
		var dir [16]byte
		_, _ = rand.Read(dir[:])
		meta := fmt.Sprintf("node.id=%d\ndirectory.id=%s\nversion=1\ncluster.id=%s\n", nd.id, base64.RawURLEncoding.EncodeToString(dir[:]), c.id)
		if err := os.WriteFile(filepath.Join(data, "meta.properties"), []byte(meta), 0o644); err != nil {
			return fmt.Errorf("apache kafka %q: write meta.properties of node %d: %w", c.o.Name, nd.id, err)
		}
	}
	return nil
}

// startNodes starts the given nodes' JVMs in parallel and waits until each
// is a registered broker, or one exits, or ReadyTimeout passes.
func (c *Cluster) startNodes(ctx context.Context, ids []int32) error {
	for _, id := range ids {
		nd := c.nodes[id]
		cmd, err := c.o.Dist.Command(kafkadist.JVM{
			Main: "kafka.Kafka", Heap: c.o.Heap, Args: []string{c.propsFile(nd)}, QuickStart: !c.o.FullJIT,
			LogFile: c.logFile(nd), ConfDir: nd.dir,
		})
		if err != nil {
			return err
		}
		// The JVM's stdout/stderr (a crash before log4j is up) go to a
		// file beside the log.
		out, err := os.OpenFile(c.logFile(nd)+".out", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("apache kafka %q: %w", c.o.Name, err)
		}
		cmd.Stdout, cmd.Stderr = out, out
		p, err := kafkadist.Start(fmt.Sprintf("%s broker %d", c.o.Name, id), cmd)
		out.Close()
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.procs[id] = p
		delete(c.paused, id)
		c.mu.Unlock()
	}
	return c.waitRegistered(ctx, ids)
}

// Name returns "source" or "target".
func (c *Cluster) Name() string { return c.o.Name }

// Bootstrap returns the comma-separated advertised client addresses.
func (c *Cluster) Bootstrap() string { return strings.Join(c.Brokers(), ",") }

// Brokers returns every broker's advertised client address in node id order.
func (c *Cluster) Brokers() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.advertised)
	}
	return out
}

func (c *Cluster) direct() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.client)
	}
	return out
}

// DirectDial dials a broker's real client listener when addr is an
// advertised (front) address, bypassing the WAN; other addresses are
// dialled as given, loopback only.
func (c *Cluster) DirectDial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	target, ok := c.fronts[addr]
	c.mu.Unlock()
	if !ok {
		target = addr
	}
	conn, err := loopback.Dial(ctx, network, target)
	if err != nil {
		return nil, fmt.Errorf("apache kafka %q: direct dial %q: %w", c.o.Name, addr, err)
	}
	return conn, nil
}

// Nodes returns every node id, down ones included.
func (c *Cluster) Nodes() []int32 {
	out := make([]int32, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.id
	}
	return out
}

// AliveNodes returns the ids of nodes whose JVM runs (paused ones included).
func (c *Cluster) AliveNodes() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int32
	for i, p := range c.procs {
		if p == nil {
			continue
		}
		if done, _ := p.Exited(); !done {
			out = append(out, int32(i))
		}
	}
	return out
}

// Pids returns the running JVMs' pids (tests check none survives Close).
func (c *Cluster) Pids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, p := range c.procs {
		if p != nil {
			out = append(out, p.Pid())
		}
	}
	return out
}

// Listeners returns every address a node listens on (client, inter-broker,
// controller), for checks that nothing is left listening.
func (c *Cluster) Listeners() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.client, n.internal, n.controller)
	}
	return out
}

func (c *Cluster) checkIDs(ids []int32) error {
	for _, id := range ids {
		if id < 0 || int(id) >= len(c.nodes) {
			return fmt.Errorf("apache kafka %q: no broker with node id %d (nodes 0..%d)", c.o.Name, id, len(c.nodes)-1)
		}
	}
	if c.isClosed() {
		return fmt.Errorf("apache kafka %q: cluster is closed", c.o.Name)
	}
	return nil
}

func (c *Cluster) isClosed() bool { return c.ops.Closed() }

// KillBrokers SIGKILLs the nodes' JVMs (no shutdown hooks, no controlled
// shutdown: leaders move once the controller notices). Killing a dead node
// is a no-op.
func (c *Cluster) KillBrokers(ids []int32) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if err := c.checkIDs(ids); err != nil {
		return err
	}
	for _, id := range ids {
		c.mu.Lock()
		p := c.procs[id]
		c.mu.Unlock()
		if p == nil {
			continue
		}
		if err := p.Kill(); err != nil {
			// Still tracked: Close and Pids must see a JVM that would not die.
			return fmt.Errorf("apache kafka %q: kill broker %d: %w", c.o.Name, id, err)
		}
		c.mu.Lock()
		c.procs[id] = nil
		delete(c.paused, id)
		c.mu.Unlock()
		c.log.Info("broker killed (SIGKILL)", "node", id, "pid", p.Pid())
	}
	return nil
}

// RestoreBrokers restarts killed nodes on their data folders and ports and
// waits until they are registered again. A node killed and restarted at
// once is refused by the controller until its old session expires
// (broker.session.timeout.ms, 9 s), so this takes JVM start plus up to 9 s.
func (c *Cluster) RestoreBrokers(ids []int32) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if err := c.checkIDs(ids); err != nil {
		return err
	}
	alive := c.AliveNodes()
	var down []int32
	for _, id := range ids {
		if !slices.Contains(alive, id) && !slices.Contains(down, id) {
			down = append(down, id)
		}
	}
	if len(down) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.ReadyTimeout)
	defer cancel()
	if err := c.startNodes(ctx, down); err != nil {
		return fmt.Errorf("apache kafka %q: restore brokers %v: %w", c.o.Name, down, err)
	}
	c.log.Info("brokers restored", "nodes", down)
	return nil
}

// PauseBrokers freezes the nodes' JVMs (SIGSTOP to the process group):
// sockets stay open, nothing is answered, the controller fences them once
// their heartbeats stop.
func (c *Cluster) PauseBrokers(ids []int32) error { return c.setPaused(ids, true) }

// ResumeBrokers lets paused JVMs run again (SIGCONT).
func (c *Cluster) ResumeBrokers(ids []int32) error { return c.setPaused(ids, false) }

func (c *Cluster) setPaused(ids []int32, pause bool) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if err := c.checkIDs(ids); err != nil {
		return err
	}
	sig := sigCont
	if pause {
		sig = sigStop
	}
	for _, id := range ids {
		c.mu.Lock()
		p := c.procs[id]
		c.mu.Unlock()
		if p == nil {
			return fmt.Errorf("apache kafka %q: pause/resume broker %d: it is not running (killed or cluster stopped)", c.o.Name, id)
		}
		if err := p.Signal(sig); err != nil {
			return fmt.Errorf("apache kafka %q: %w", c.o.Name, err)
		}
		c.mu.Lock()
		c.paused[id] = pause
		c.mu.Unlock()
		c.log.Info("broker pause changed", "node", id, "paused", pause)
	}
	return nil
}

// Stop takes the whole cluster down (SIGTERM in parallel, SIGKILL after
// StopGrace); data stays for Restart.
func (c *Cluster) Stop() error {
	c.ops.Lock()
	defer c.ops.Unlock()
	return c.stopLocked(c.o.StopGrace)
}

func (c *Cluster) stopLocked(grace time.Duration) error {
	c.mu.Lock()
	procs := slices.Clone(c.procs)
	for i := range c.procs {
		c.procs[i] = nil
	}
	c.paused = map[int32]bool{}
	c.mu.Unlock()
	err := kafkadist.StopAll(procs, grace)
	c.log.Info("apache kafka cluster stopped")
	return err
}

// Restart starts every node that is down (all of them after Stop) on the
// same data and ports and waits until all are registered.
func (c *Cluster) Restart(ctx context.Context) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if c.isClosed() {
		return fmt.Errorf("apache kafka %q: restart: cluster is closed", c.o.Name)
	}
	alive := c.AliveNodes()
	var down []int32
	for _, id := range c.Nodes() {
		if !slices.Contains(alive, id) {
			down = append(down, id)
		}
	}
	if len(down) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.ReadyTimeout)
	defer cancel()
	if err := c.startNodes(ctx, down); err != nil {
		return err
	}
	c.log.Info("apache kafka cluster restarted", "bootstrap", c.Bootstrap())
	return nil
}

// Close stops every JVM for good (SIGTERM, SIGKILL after StopGrace). The
// data folder stays: the caller owns it.
func (c *Cluster) Close() error {
	return c.ops.Close(func() error { return c.stopLocked(c.o.CloseGrace) })
}
