// Package wan is a user-space WAN link (the CI kernel has no netem): one TCP
// proxy per source broker, on 127.0.0.1, that shapes each direction of every
// connection with latency and jitter, a bandwidth cap shared by the link,
// stalls, partitions and resets.
//
// Each direction of a proxied connection is a reader goroutine that stamps
// byte chunks with a delivery time and a writer goroutine that delivers them
// at that time, in order. The queue between them is bounded, and both sides
// stop while the link is partitioned, so a partition holds bytes without
// buffering without limit: TCP backpressure reaches the sender, as it would
// behind a real partition.
package wan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/loopback"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

const (
	chunkSize  = 16 << 10 // bytes read per chunk
	queueDepth = 64       // chunks in flight per direction: bounds memory to 1 MiB
	dialWait   = 5 * time.Second

	// DirToSource and DirFromSource are the values of the direction label.
	DirToSource   = "to_source"
	DirFromSource = "from_source"
)

// shaping is the link's current setting, copied by value for each chunk.
type shaping struct {
	latency, jitter time.Duration
	stallPct        float64
	stall           time.Duration
}

// Link is one WAN link: a proxy per broker, shared shaping.
type Link struct {
	log   *slog.Logger
	bytes *prometheus.CounterVec
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	// limiters are per direction and shared by every connection of the
	// link: a bandwidth cap is the pipe's, not each socket's.
	toLim, fromLim *rate.Limiter

	mu        sync.Mutex
	shape     shaping
	bandwidth int64
	gate      chan struct{} // closed while not partitioned
	fronts    map[string]*proxy
	conns     map[*pconn]struct{}
	closed    bool
}

// NewLink returns a link with no shaping. reg may be nil; the bytes counter
// (metrics.WANBytes) is registered on it, reusing an identical collector
// already registered there.
func NewLink(logger *slog.Logger, reg prometheus.Registerer) *Link {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metrics.WANBytes,
		Help: "Bytes delivered across the user-space WAN, by direction relative to the source cluster.",
	}, []string{"direction"})
	if reg != nil {
		if err := reg.Register(cv); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					cv = existing
				}
			} else {
				logger.Warn("wan: bytes counter not registered", "err", err)
			}
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	gate := make(chan struct{})
	close(gate)
	return &Link{
		log:     logger.With("component", "wan"),
		bytes:   cv,
		ctx:     ctx,
		stop:    stop,
		toLim:   rate.NewLimiter(rate.Inf, chunkSize),
		fromLim: rate.NewLimiter(rate.Inf, chunkSize),
		gate:    gate,
		fronts:  make(map[string]*proxy),
		conns:   make(map[*pconn]struct{}),
	}
}

// Front opens (once per realAddr) a proxy listener on 127.0.0.1 that forwards
// to realAddr and returns its address. Asking again for the same realAddr
// returns the same front, so a broker restarted on its old port keeps its
// advertised address. It is an embedded.FrontFunc.
func (l *Link) Front(realAddr string) (string, error) {
	if err := loopback.Check(realAddr); err != nil {
		return "", fmt.Errorf("wan: front for %q refused: %w", realAddr, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", fmt.Errorf("wan: front for %q: link is closed", realAddr)
	}
	if p, ok := l.fronts[realAddr]; ok {
		return p.ln.Addr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("wan: listen for front of %s: %w", realAddr, err)
	}
	p := &proxy{l: l, ln: ln, upstream: realAddr}
	l.fronts[realAddr] = p
	l.wg.Add(1)
	go p.accept()
	l.log.Info("wan front opened", "front", ln.Addr().String(), "upstream", realAddr)
	return ln.Addr().String(), nil
}

// SetLatency sets the one-way delay of each direction; every chunk gets an
// extra uniform sample in [-jitter, +jitter] (never below zero) but bytes
// keep their order.
func (l *Link) SetLatency(oneWay, jitter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shape.latency, l.shape.jitter = max(oneWay, 0), max(jitter, 0)
}

// SetBandwidth caps each direction of the link at bytesPerSecond, shared by
// all its connections; 0 (or less) removes the cap.
func (l *Link) SetBandwidth(bytesPerSecond int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bandwidth = max(bytesPerSecond, 0)
	for _, lim := range []*rate.Limiter{l.toLim, l.fromLim} {
		if bytesPerSecond <= 0 {
			lim.SetLimit(rate.Inf)
			lim.SetBurst(chunkSize)
			continue
		}
		// A burst of 1/50 s (at least 1 KiB, at most a chunk) keeps the
		// rate near the cap over any window longer than a few tens of ms.
		burst := int(min(max(bytesPerSecond/50, 1024), chunkSize))
		lim.SetLimit(rate.Limit(bytesPerSecond))
		lim.SetBurst(burst)
	}
}

// SetPartition holds (on) or releases (off) every byte in both directions.
// Connections stay open and new ones are accepted, but nothing reaches the
// other side until the partition heals.
func (l *Link) SetPartition(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	partitioned := !chanClosed(l.gate)
	if on == partitioned {
		return
	}
	if on {
		l.gate = make(chan struct{})
	} else {
		close(l.gate)
	}
	l.log.Info("wan partition changed", "partitioned", on)
}

func chanClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// SetStall makes percent (0..100) of the chunks wait stall longer; chunks
// behind a stalled one wait with it.
func (l *Link) SetStall(percent float64, stall time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shape.stallPct = min(max(percent, 0), 100)
	l.shape.stall = max(stall, 0)
}

// ResetConnections closes every proxied connection with SO_LINGER 0, so both
// peers see a reset, and returns how many it closed.
func (l *Link) ResetConnections() int {
	l.mu.Lock()
	cs := make([]*pconn, 0, len(l.conns))
	for c := range l.conns {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	for _, c := range cs {
		c.reset()
	}
	if len(cs) > 0 {
		l.log.Info("wan connections reset", "count", len(cs))
	}
	return len(cs)
}

// Heal turns every kind of shaping off: no latency, cap, stall or partition.
func (l *Link) Heal() {
	l.SetLatency(0, 0)
	l.SetBandwidth(0)
	l.SetStall(0, 0)
	l.SetPartition(false)
}

// Close closes every front listener and proxied connection and waits for
// the link's goroutines to end.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var errs []error
	for _, p := range l.fronts {
		if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	cs := make([]*pconn, 0, len(l.conns))
	for c := range l.conns {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	l.stop()
	for _, c := range cs {
		c.close()
	}
	l.wg.Wait()
	return errors.Join(errs...)
}

func (l *Link) snapshot() shaping {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shape
}

func (l *Link) partitionGate() chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gate
}

// waitHealed returns false when done closes before the link is healed.
func (l *Link) waitHealed(done <-chan struct{}) bool {
	for {
		g := l.partitionGate()
		select {
		case <-g:
			// The gate may have been swapped for a new partition between
			// our read and now; a fresh read settles it.
			if chanClosed(l.partitionGate()) {
				return true
			}
		case <-done:
			return false
		}
	}
}

// proxy is one front: a listener forwarding to one broker.
type proxy struct {
	l        *Link
	ln       net.Listener
	upstream string
}

func (p *proxy) accept() {
	defer p.l.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		c := &pconn{l: p.l, client: client, done: make(chan struct{})}
		c.ctx, c.cancel = context.WithCancel(p.l.ctx)
		p.l.mu.Lock()
		if p.l.closed {
			p.l.mu.Unlock()
			_ = client.Close()
			return
		}
		p.l.conns[c] = struct{}{}
		p.l.wg.Add(1)
		p.l.mu.Unlock()
		go c.run(p.upstream)
	}
}

// pconn is one proxied connection.
type pconn struct {
	l      *Link
	client net.Conn

	mu       sync.Mutex
	upstream net.Conn

	ctx       context.Context // cancelled by close: ends rate waits
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

func (c *pconn) run(upstream string) {
	defer c.l.wg.Done()
	defer c.close()
	// Behind a partition the SYN would not get through either: dial the
	// broker only once the link heals.
	if !c.l.waitHealed(c.done) {
		return
	}
	ctx, cancel := context.WithTimeout(c.l.ctx, dialWait)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", upstream)
	cancel()
	if err != nil {
		// The broker is down (killed, stopped): the client sees its
		// connection close, as it would with nothing on the far side.
		c.l.log.Debug("wan upstream dial failed", "upstream", upstream, "err", err)
		return
	}
	c.mu.Lock()
	c.upstream = up
	closed := chanClosed(c.done) // the connection was closed meanwhile
	c.mu.Unlock()
	if closed {
		_ = up.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.pipe(c.client, up, c.l.toLim, DirToSource) }()
	go func() { defer wg.Done(); c.pipe(up, c.client, c.l.fromLim, DirFromSource) }()
	wg.Wait()
}

// bufs recycles chunk buffers: a fresh 16 KiB per read costs about a third
// of the proxy's throughput in allocation and GC.
var bufs = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

type chunk struct {
	buf *[]byte
	b   []byte
	at  time.Time
}

// pipe moves bytes from src to dst with the link's shaping. It returns when
// src reaches EOF (after half-closing dst) or either side fails (after
// closing the whole connection).
func (c *pconn) pipe(src, dst net.Conn, lim *rate.Limiter, dir string) {
	q := make(chan chunk, queueDepth)
	counter := c.l.bytes.WithLabelValues(dir)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		timer := time.NewTimer(0)
		<-timer.C
		defer timer.Stop()
		for ch := range q {
			if d := time.Until(ch.at); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-c.done:
					return
				}
			}
			if !c.l.waitHealed(c.done) {
				return
			}
			// Counted as handed to the far side, before the write returns:
			// a peer may read (and a test may look) before Write returns.
			counter.Add(float64(len(ch.b)))
			_, err := dst.Write(ch.b)
			bufs.Put(ch.buf)
			if err != nil {
				c.close()
				return
			}
		}
		// src said EOF and everything before it is delivered.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()

	var last time.Time // delivery time of the previous chunk: order is kept
	defer func() { close(q); <-writerDone }()
	for {
		// Partitioned: stop reading so the sender's TCP window fills.
		if !c.l.waitHealed(c.done) {
			return
		}
		bp := bufs.Get().(*[]byte)
		buf := *bp
		// Under a bandwidth cap, read no more than the limiter's burst at
		// a time: a link shapes packet by packet, so the first bytes of a
		// large response must not wait for a whole 16 KiB chunk's tokens
		// (clients with a short first-byte deadline, like kafka-go's fetch,
		// would time out on every request).
		if lim.Limit() != rate.Inf {
			buf = buf[:min(len(buf), max(lim.Burst(), 1))]
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !c.throttle(lim, n) {
				return
			}
			arrived := time.Now()
			sh := c.l.snapshot()
			delay := sh.latency
			if sh.jitter > 0 {
				delay += time.Duration(rand.Int64N(int64(2*sh.jitter)+1)) - sh.jitter
			}
			if sh.stallPct > 0 && rand.Float64()*100 < sh.stallPct {
				delay += sh.stall
			}
			at := arrived.Add(max(delay, 0))
			if at.Before(last) {
				at = last
			}
			last = at
			select {
			case q <- chunk{buf: bp, b: buf[:n], at: at}:
			case <-c.done:
				return
			}
		} else {
			bufs.Put(bp)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.close() // a failed side ends the whole connection
			}
			return
		}
	}
}

// throttle takes n bytes' worth of tokens in pieces no larger than the
// limiter's burst (which SetBandwidth may change meanwhile).
func (c *pconn) throttle(lim *rate.Limiter, n int) bool {
	for n > 0 {
		if lim.Limit() == rate.Inf {
			return true
		}
		piece := min(n, max(lim.Burst(), 1))
		if err := lim.WaitN(c.ctx, piece); err != nil {
			if c.ctx.Err() != nil {
				return false
			}
			continue // burst shrank under us: take a smaller piece
		}
		n -= piece
	}
	return true
}

// close ends the connection in both directions.
func (c *pconn) close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		close(c.done)
		c.cancel()
		up := c.upstream
		c.mu.Unlock()
		_ = c.client.Close()
		if up != nil {
			_ = up.Close()
		}
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
}

// reset closes both sockets with SO_LINGER 0: the kernel sends RST instead
// of FIN, so the peers see "connection reset", not a clean end.
func (c *pconn) reset() {
	c.mu.Lock()
	up := c.upstream
	c.mu.Unlock()
	for _, conn := range []net.Conn{c.client, up} {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	c.close()
}
