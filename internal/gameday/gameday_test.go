package gameday

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// threeSteps is a game day on embedded clusters: a quiet step, a slow WAN,
// and a WAN cut whose halt condition (lag under 300 records at 500/s) is
// bound to break a second into a 30 s cut.
const threeSteps = `apiVersion: kmt.dev/v1
kind: GameDay
metadata: {name: ci-drill, owner: ci@example.com, abortOwner: oncall@example.com}
clusters: {backend: embedded}
halt:
  - invariant: nothing-lost
steps:
  - name: quiet
    hypothesis: without faults nothing is lost and the lag stays small
    scenario: baseline
    short: true
    load: {rate: 500, duration: 5s}
    steadyState:
      - {invariant: lag-below, value: 5000}
      - {invariant: nothing-lost}
  - name: slow
    hypothesis: 50 ms more WAN latency loses nothing
    scenario: baseline
    short: true
    load: {rate: 500, duration: 6s}
    faults:
      - {name: slow, kind: wan-latency, at: 3s, duration: 2s, params: {latency: 50ms}}
    steadyState:
      - {invariant: nothing-lost}
  - name: cut
    hypothesis: a long WAN cut keeps the backlog under 300 records
    scenario: baseline
    short: true
    load: {rate: 500, duration: 40s}
    faults:
      - {name: cut, kind: wan-partition, at: 3s, duration: 30s}
    steadyState:
      - {invariant: nothing-lost}
    halt:
      - {invariant: lag-below, value: 300}
`

func readBook(t *testing.T, text string) *Book {
	t.Helper()
	p := filepath.Join(t.TempDir(), "book.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Read(p)
	if err != nil {
		t.Fatalf("read run book: %v", err)
	}
	return b
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestGameDayHaltHealsAtOnce: steps 1 and 2 hold, step 3's halt condition
// breaks during the cut: the cut is healed right after the halt, long
// before its planned end, and the report says why the day stopped.
func TestGameDayHaltHealsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("three embedded runs")
	}
	b := readBook(t, threeSteps)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var progress strings.Builder
	res, err := Run(ctx, b, Options{Dir: dir, Progress: &progress, Logger: quietLog()})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("game day: %v", err)
	}
	if len(res.Steps) != 3 {
		t.Fatalf("%d steps in the result, want 3: %+v", len(res.Steps), res.Steps)
	}
	for _, s := range res.Steps[:2] {
		if s.Status != Held {
			t.Errorf("step %s: %s (%s), want held", s.Name, s.Status, s.Reason)
		}
	}
	cut := res.Steps[2]
	if res.Outcome != Halted || cut.Status != Halted || cut.Halt == nil {
		t.Fatalf("outcome %s, step cut %s %+v: want halted", res.Outcome, cut.Status, cut.Halt)
	}
	if !strings.Contains(res.Reason, `halt condition "lag < 300 records" broke`) {
		t.Errorf("reason %q does not name the broken halt condition", res.Reason)
	}
	if len(cut.Halt.Active) != 1 || cut.Halt.Active[0] != "cut" || len(cut.Faults) != 1 {
		t.Fatalf("halt %+v faults %+v: want the cut active at the halt", cut.Halt, cut.Faults)
	}
	f := cut.Faults[0]
	// Healed at once: reverted after the halt and long before the 30 s
	// window would have closed by itself.
	if f.RevertedAt.IsZero() || f.RevertedAt.Before(cut.Halt.At) || f.PlannedEnd.Sub(f.RevertedAt) < 20*time.Second {
		t.Errorf("cut applied %s reverted %s, halt at %s, planned end %s: want reverted right after the halt", f.AppliedAt, f.RevertedAt, cut.Halt.At, f.PlannedEnd)
	}
	page, err := os.ReadFile(filepath.Join(dir, resultHTML))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="outcome">halted`, `id="stop-reason"`, "lag &lt; 300 records", "fault cut healed", `data-status="halted"`, "02-slow/report.html"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("game-day.html lacks %q", want)
		}
	}
	if got, err := ReadResult(dir); err != nil || got.Outcome != Halted || len(got.Findings) == 0 || !strings.Contains(got.Findings[0], "[cut] halted") {
		t.Errorf("game-day.json: %v %+v", err, got)
	}
	if _, err := os.Stat(filepath.Join(dir, ControlFile)); err == nil {
		t.Error("the control file is left behind after the game day")
	}
}

// TestGameDayAbortFromAnotherTerminal: an abort sent while a fault is
// active heals it and stops the day with who and why.
func TestGameDayAbortFromAnotherTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("an embedded run")
	}
	b := readBook(t, strings.Replace(threeSteps, "      - {invariant: lag-below, value: 300}\n", "      - {invariant: lag-below, value: 1000000}\n", 1))
	b.Steps = b.Steps[2:]
	dir := t.TempDir()
	w := &watchFor{text: "fault cut applied", seen: make(chan struct{})}
	go func() {
		<-w.seen
		if err := Send(dir, CmdAbort, "tester", "drill over"); err != nil {
			t.Errorf("send abort: %v", err)
		}
	}()
	res, err := Run(context.Background(), b, Options{Dir: dir, Progress: w, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Steps[0]
	if res.Outcome != Aborted || s.Status != Aborted || !strings.Contains(res.Reason, "aborted by tester (drill over)") {
		t.Fatalf("outcome %s step %s reason %q: want aborted by tester (drill over)", res.Outcome, s.Status, res.Reason)
	}
	if len(s.Faults) != 1 || s.Faults[0].RevertedAt.IsZero() || s.Faults[0].PlannedEnd.Sub(s.Faults[0].RevertedAt) < 20*time.Second {
		t.Errorf("faults %+v: want the cut reverted at the abort", s.Faults)
	}
	if err := Send(dir, CmdAbort, "tester", ""); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("abort after the end: %v, want a clear error", err)
	}
}

// watchFor is a progress writer that signals once text was written.
type watchFor struct {
	mu   sync.Mutex
	buf  strings.Builder
	text string
	seen chan struct{}
	once sync.Once
}

func (w *watchFor) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.text) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// Pause holds before the next step until resume; abort ends the wait.
func TestPauseResume(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ControlFile), nil, 0o644)
	d := &Day{o: Options{Dir: dir, Progress: io.Discard, Tick: 10 * time.Millisecond}}
	if err := Send(dir, CmdPause, "alice", "coffee"); err != nil {
		t.Fatal(err)
	}
	type out struct {
		why   string
		abort bool
	}
	got := make(chan out, 1)
	go func() { w, a := d.waitIfPaused(context.Background()); got <- out{w, a} }()
	select {
	case o := <-got:
		t.Fatalf("did not hold while paused: %+v", o)
	case <-time.After(200 * time.Millisecond):
	}
	Send(dir, CmdResume, "alice", "")
	if o := <-got; o.abort {
		t.Fatalf("resume returned abort: %+v", o)
	}
	Send(dir, CmdPause, "alice", "")
	go func() { w, a := d.waitIfPaused(context.Background()); got <- out{w, a} }()
	Send(dir, CmdAbort, "bob", "enough")
	if o := <-got; !o.abort || o.why != "aborted by bob (enough)" {
		t.Fatalf("abort while paused: %+v", o)
	}
}

// A run book names what is missing, all at once.
func TestBookValidation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.yaml")
	os.WriteFile(p, []byte(`apiVersion: kmt.dev/v1
kind: GameDay
metadata: {name: x}
clusters: {backend: somewhere}
steps:
  - name: a
    steadyState: [{invariant: lag-below}]
    expectAlert: {name: X, within: 1m}
`), 0o644)
	_, err := Read(p)
	if err == nil {
		t.Fatal("a broken run book was accepted")
	}
	for _, want := range []string{"owner and metadata.abortOwner", `backend "somewhere"`, "hypothesis is required", "lag-below needs a value", "expectAlert needs prometheus.url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
