package runner

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// A run must leave nothing behind: no goroutines, no listening sockets, no
// temporary directories. kmt runs many scenarios in one process (and tests
// run many runs), so a leak per run adds up.

// leftovers is what the process holds before a run.
type leftovers struct {
	goroutines int
	stacks     map[string]bool // first frame of each goroutine, to show what is new
	listeners  map[string]string
	tmp        string
}

// snapshotLeftovers points TMPDIR at a fresh empty directory (so the run's
// temporary directories are visible) and records goroutines and listeners.
// Call it before the run, after creating any t.TempDir the test needs.
func snapshotLeftovers(t *testing.T) *leftovers {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	runtime.GC()
	return &leftovers{goroutines: runtime.NumGoroutine(), stacks: goroutineHeads(), listeners: ownListeners(t), tmp: tmp}
}

// check fails the test for every goroutine, listener or temporary entry the
// run left behind. Goroutines get a few seconds' grace: closed connections'
// readers and timers wind down asynchronously.
func (l *leftovers) check(t *testing.T) {
	t.Helper()
	probs, n := l.problems(t, 10*time.Second)
	for _, p := range probs {
		t.Error(p)
	}
	if len(probs) == 0 {
		t.Logf("no leftovers: goroutines %d before, %d after; no new listeners; TMPDIR empty", l.goroutines, n)
	}
}

// problems lists what was left behind, waiting up to grace for goroutines
// to exit; it also returns the final goroutine count.
func (l *leftovers) problems(t *testing.T, grace time.Duration) ([]string, int) {
	t.Helper()
	var probs []string
	deadline := time.Now().Add(grace)
	n := runtime.NumGoroutine()
	for n > l.goroutines && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > l.goroutines {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var fresh []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if !l.stacks[goroutineHead(g)] {
				fresh = append(fresh, g)
			}
		}
		probs = append(probs, fmt.Sprintf("%d goroutines after the run, %d before; the ones whose top frame is new:\n%s", n, l.goroutines, strings.Join(fresh, "\n\n")))
	}

	after := ownListeners(t)
	var extra []string
	for inode, addr := range after {
		if _, ok := l.listeners[inode]; !ok {
			extra = append(extra, addr+" (socket inode "+inode+")")
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		probs = append(probs, fmt.Sprintf("listening TCP sockets left open by the run: %v", extra))
	}

	ents, err := os.ReadDir(l.tmp)
	if err != nil {
		probs = append(probs, fmt.Sprintf("read TMPDIR %s: %v", l.tmp, err))
	}
	var left []string
	for _, e := range ents {
		left = append(left, filepath.Join(l.tmp, e.Name()))
	}
	if len(left) > 0 {
		probs = append(probs, fmt.Sprintf("temporary entries left behind in TMPDIR: %v", left))
	}
	return probs, n
}

// TestLeftoversDetectsLeaks: the detector must see a leaked goroutine, a
// listener and a temporary directory, or the run tests prove nothing.
func TestLeftoversDetectsLeaks(t *testing.T) {
	l := snapshotLeftovers(t)
	stop := make(chan struct{})
	exited := make(chan struct{})
	go func() { <-stop; close(exited) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kmt-leak-")
	if err != nil {
		t.Fatal(err)
	}
	probs, _ := l.problems(t, 200*time.Millisecond)
	close(stop)
	<-exited
	ln.Close()
	os.RemoveAll(dir)
	joined := strings.Join(probs, "\n")
	for _, want := range []string{"goroutines after the run", "listening TCP sockets", "kmt-leak-"} {
		if !strings.Contains(joined, want) {
			t.Errorf("leak detector missed %q; it reported:\n%s", want, joined)
		}
	}
	if probs, _ := l.problems(t, 5*time.Second); len(probs) > 0 {
		t.Errorf("after cleaning up, the detector still reports: %v", probs)
	}
}

// goroutineHeads returns the set of "top function" lines of every goroutine.
func goroutineHeads() map[string]bool {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]bool{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		out[goroutineHead(g)] = true
	}
	return out
}

// goroutineHead is the first function line of one goroutine's stack dump.
func goroutineHead(g string) string {
	lines := strings.Split(g, "\n")
	if len(lines) < 2 {
		return g
	}
	f := lines[1]
	if i := strings.LastIndex(f, "("); i > 0 {
		f = f[:i]
	}
	return f
}

// ownListeners returns this process's listening TCP sockets: socket inode
// -> local address, from /proc/net/tcp{,6} filtered by /proc/self/fd.
func ownListeners(t *testing.T) map[string]string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd (%v): the socket leak check needs Linux", err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if in, ok := strings.CutPrefix(target, "socket:["); ok {
			mine[strings.TrimSuffix(in, "]")] = true
		}
	}
	out := map[string]string{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue // no IPv6
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(fs) < 10 || fs[3] != "0A" { // 0A = LISTEN
				continue
			}
			if mine[fs[9]] {
				out[fs[9]] = fmt.Sprintf("%s %s", filepath.Base(file), fs[1])
			}
		}
		f.Close()
	}
	return out
}

func TestOwnListenersSeesAListener(t *testing.T) {
	// The detector itself must work, or the leak test proves nothing.
	before := ownListeners(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	during := ownListeners(t)
	ln.Close()
	after := ownListeners(t)
	if len(during) != len(before)+1 {
		t.Errorf("listeners before %d, with one more open %d: the /proc parser misses it (%v)", len(before), len(during), during)
	}
	if len(after) != len(before) {
		t.Errorf("listeners before %d, after closing %d", len(before), len(after))
	}
}

func TestNoLeftoversAfterRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	dir := t.TempDir()
	// No warm-up run: nothing kmt uses starts process-wide goroutines on
	// first use, so even the first run in a process must leave none.
	l := snapshotLeftovers(t)
	rep, took := runE2E(t, Options{Scenario: "baseline", Short: true, Duration: 6 * time.Second, ReportDir: dir,
		MetricsAddr: "127.0.0.1:0"})
	logReport(t, rep, took)
	if rep.Verdict != report.Pass {
		t.Errorf("verdict %s, want pass: %v", rep.Verdict, rep.Reasons)
	}
	l.check(t)
}
