package failover

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// deadBroker is the network seen by the drill's clients when one source
// broker's JVM died and the controller has not fenced it yet: its address
// refuses connections (a real refused TCP dial, to a loopback port nothing
// listens on) while the cluster's metadata still names it leader of its
// partitions. Until fenced (KillBrokers: kfake moves its partitions), every
// request that needs it fails, as on real Kafka in the first seconds of a
// broker-kill.
type deadBroker struct {
	c       *embedded.Cluster
	addr    string // the dead broker's advertised address
	closed  string // a loopback address that refuses connections
	refused atomic.Int64
}

func newDeadBroker(t *testing.T, c *embedded.Cluster, node int32) *deadBroker {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	return &deadBroker{c: c, addr: c.Brokers()[node], closed: closed}
}

func (b *deadBroker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr == b.addr {
		b.refused.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, b.closed)
	}
	return b.c.DirectDial(ctx, network, addr)
}

// brokerDownSource is a 3-broker embedded source with topic orders (6
// partitions, 2 led by each broker) and group g's committed offset 10+p on
// partition p. It returns the cluster, a broker that leads partitions but
// is not g's coordinator (the one leading most), and how many it leads.
func brokerDownSource(t *testing.T) (*embedded.Cluster, int32, int) {
	t.Helper()
	ctx := t.Context()
	c, err := embedded.Start(ctx, embedded.Options{Name: "source", Brokers: 3, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.CreateTopic(ctx, "orders", 6); err != nil {
		t.Fatal(err)
	}
	cl, err := kafkaclient.Config{Brokers: c.Brokers(), Dial: c.DirectDial}.NewKgo()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	for p := int32(0); p < 6; p++ {
		offs.Add(kadm.Offset{Topic: "orders", Partition: p, At: 10 + int64(p), LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
	}
	coord := groupCoordinator(t, adm)
	tds, err := adm.ListTopics(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	leads := map[int32]int{}
	for _, pd := range tds["orders"].Partitions {
		leads[pd.Leader]++
	}
	pick := int32(-1)
	for _, n := range c.Nodes() {
		if n != coord["g"].NodeID && (pick < 0 || leads[n] > leads[pick]) {
			pick = n
		}
	}
	return c, pick, leads[pick]
}

func groupCoordinator(t *testing.T, adm *kadm.Client) kadm.FindCoordinatorResponses {
	t.Helper()
	coord := adm.FindGroupCoordinators(t.Context(), "g")
	if coord["g"].Err != nil {
		t.Fatalf("coordinator of group g: %v", coord["g"].Err)
	}
	return coord
}

func brokerDownDrill(t *testing.T, c *embedded.Cluster, dial kafkaclient.DialFunc) *Drill {
	t.Helper()
	d, err := New(Config{
		Spec:   scenarios.Failover{Group: "g", Lag: scenarios.LagCaughtUp},
		Source: kafkaclient.Config{Brokers: c.Brokers(), Dial: dial},
		Topics: []Pair{{Source: "orders", Target: "source.orders"}}, RunID: "r", Ledger: ledger.New(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSourceCommittedWithABrokerDown: at the failover point one source
// broker is dead and not yet fenced (it still leads some of the 6 partitions;
// fenced 3 s later, its partitions move). The drill must still record all 6
// partitions with the group's committed offsets (10..15), not give up with
// "connection refused" (it did: it listed end offsets, which need every
// leader, and returned the first error: 0 partitions, drill incomplete).
func TestSourceCommittedWithABrokerDown(t *testing.T) {
	c, dead, led := brokerDownSource(t)
	if led == 0 {
		t.Fatalf("broker %d leads no partition of orders: the test proves nothing", dead)
	}
	b := newDeadBroker(t, c, dead)
	d := brokerDownDrill(t, c, b.dial)
	fenced := time.AfterFunc(3*time.Second, func() { _ = c.KillBrokers([]int32{dead}) })
	defer fenced.Stop()
	if err := d.readSourceCommitted(t.Context()); err != nil {
		t.Fatalf("reading the source's committed offsets with broker %d down: %v", dead, err)
	}
	if len(d.parts) != 6 {
		t.Fatalf("%d partitions recorded, want 6", len(d.parts))
	}
	for tp, p := range d.parts {
		if want := 10 + int64(tp.Partition); p.SourceCommitted != want {
			t.Errorf("%s[%d]: committed %d, want %d", tp.Topic, tp.Partition, p.SourceCommitted, want)
		}
	}
	t.Logf("broker %d down (led %d partitions), %d connections to it refused", dead, led, b.refused.Load())
}

// TestSourceCommittedCoordinatorNeverBack: the group's coordinator is dead
// and never fenced within the drill's deadline: the committed offsets cannot
// be read, and the error says which group, which broker state and for how
// long it tried (the drill is incomplete, never a pass on guessed offsets).
func TestSourceCommittedCoordinatorNeverBack(t *testing.T) {
	c, _, _ := brokerDownSource(t)
	cl, err := kafkaclient.Config{Brokers: c.Brokers(), Dial: c.DirectDial}.NewKgo()
	if err != nil {
		t.Fatal(err)
	}
	coord := groupCoordinator(t, kadm.NewClient(cl))
	cl.Close()
	b := newDeadBroker(t, c, coord["g"].NodeID)
	d := brokerDownDrill(t, c, b.dial)
	d.sourceWait = 3 * time.Second
	err = d.readSourceCommitted(t.Context())
	if err == nil {
		t.Fatalf("committed offsets read with the coordinator (broker %d) refusing every connection", coord["g"].NodeID)
	}
	if !strings.Contains(err.Error(), "group g") || !strings.Contains(err.Error(), "3s") {
		t.Errorf("error %q does not name the group and the time it retried", err)
	}
	if len(d.parts) != 0 {
		t.Errorf("%d partitions recorded without committed offsets, want 0", len(d.parts))
	}
}
