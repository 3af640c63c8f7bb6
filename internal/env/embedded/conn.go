package embedded

import (
	"errors"
	"net"
	"sync"
)

// gate blocks callers while closed ("paused") and lets them through while
// open. It is a channel swap rather than a sync.Cond so that waiters can also
// select on a connection's own close.
type gate struct {
	mu     sync.Mutex
	open   chan struct{} // closed while the gate is open
	paused bool
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

// set pauses (true) or resumes (false) everything waiting on the gate.
func (g *gate) set(paused bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if paused == g.paused {
		return
	}
	g.paused = paused
	if paused {
		g.open = make(chan struct{})
	} else {
		close(g.open)
	}
}

// wait returns nil once the gate is open, or errConnClosed when done closes
// first.
func (g *gate) wait(done <-chan struct{}) error {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-done:
		return errConnClosed
	}
}

var errConnClosed = errors.New("embedded: broker connection closed")

// conn wraps a broker-side connection so that the cluster can freeze it
// (pause: bytes stop in both directions but the socket stays open, as with a
// SIGSTOPped broker) or drop it (broker kill).
type conn struct {
	net.Conn
	g         *gate
	done      chan struct{}
	closeOnce sync.Once
	onClose   func(*conn)
}

// Read waits for the gate before and after reading: a read already blocked in
// the kernel when the pause began must not hand its bytes to the broker until
// the pause ends.
func (c *conn) Read(p []byte) (int, error) {
	if err := c.g.wait(c.done); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if werr := c.g.wait(c.done); werr != nil {
		return 0, werr
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.g.wait(c.done); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.done)
		err = c.Conn.Close()
		if c.onClose != nil {
			c.onClose(c)
		}
	})
	return err
}

// advertisedAddr is what the wrapped listener reports as its address. kfake
// builds every broker host:port it puts in metadata (and FindCoordinator,
// DescribeCluster, produce/fetch leader hints) from the listener's Addr, so
// this is how brokers advertise the WAN front instead of their real port.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// listener is the net.Listener kfake gets for one broker.
type listener struct {
	net.Listener
	n *node
}

func (l *listener) Addr() net.Addr { return advertisedAddr(l.n.advertised) }

func (l *listener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.n.track(raw), nil
}
