package assertions

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Window is an absolute time span, [Start, End].
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Windows maps a window name (run, warmup, steady, recovery, drain,
// fault:<name>) to its absolute span. The runner records the real phase
// times; "run" spans all of them.
type Windows map[string]Window

// Lookup returns the named window, or an error naming the ones there are.
func (w Windows) Lookup(name string) (Window, error) {
	if win, ok := w[name]; ok {
		if win.End.Before(win.Start) {
			return Window{}, fmt.Errorf("window %q ends (%s) before it starts (%s)", name, win.End.Format(time.RFC3339Nano), win.Start.Format(time.RFC3339Nano))
		}
		return win, nil
	}
	var names []string
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	return Window{}, fmt.Errorf("no %q window was recorded for this run (recorded: %s); was the phase skipped?", name, strings.Join(names, ", "))
}

// PlannedWindows places a scenario's planned phases at loadStart (t=0 of
// the scenario time model) and adds "run" spanning them all. The runner
// should prefer the times it actually recorded (drain usually ends before
// its deadline); this is for plans, tests and dry runs.
func PlannedWindows(s *scenarios.Scenario, loadStart time.Time) Windows {
	w := Windows{}
	var end time.Duration
	for _, p := range s.Phases() {
		w[p.Name] = Window{Start: loadStart.Add(p.Start), End: loadStart.Add(p.End)}
		end = max(end, p.End)
	}
	w["run"] = Window{Start: loadStart, End: loadStart.Add(end)}
	return w
}
