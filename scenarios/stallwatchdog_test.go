package scenarios_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// withValidation is testdata/good.yaml (short form timeScale 0.5) with a
// spec.validation block of the given lines.
func withValidation(t *testing.T, lines ...string) (*scenarios.Scenario, error) {
	t.Helper()
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if len(lines) > 0 {
		block := "  validation:\n    " + strings.Join(lines, "\n    ") + "\n  timeline:"
		text = strings.Replace(text, "  timeline:", block, 1)
	}
	s, err := scenarios.Parse("good.yaml", []byte(text))
	if err != nil {
		return nil, err
	}
	return s, s.Validate(scenarios.BackendLocal)
}

// TestShortFormScalesStallAfter: the short form scales the stall threshold
// with its fault windows (a 30s threshold would outlast a scaled pause and
// never see the stall), not below MinShortStallAfter, and keeps one
// written below that. Before: every case kept its long form's value (30s,
// 10s, 1s).
func TestShortFormScalesStallAfter(t *testing.T) {
	for _, c := range []struct {
		lines []string
		long  time.Duration
		short time.Duration
	}{
		{nil, 30 * time.Second, 15 * time.Second}, // the default, timeScale 0.5
		{[]string{"stallAfter: 10s"}, 10 * time.Second, 5 * time.Second},
		{[]string{"stallAfter: 3s"}, 3 * time.Second, 2 * time.Second}, // 1.5s: raised to the floor
		{[]string{"stallAfter: 1s"}, time.Second, time.Second},         // written below the floor: kept
	} {
		s, err := withValidation(t, c.lines...)
		if err != nil {
			t.Fatalf("%v: %v", c.lines, err)
		}
		if got := s.Spec.Validation.StallThreshold(); got != c.long {
			t.Errorf("%v: long form threshold %s, want %s", c.lines, got, c.long)
		}
		if got := s.ShortForm().Spec.Validation.StallThreshold(); got != c.short {
			t.Errorf("%v: short form threshold %s, want %s", c.lines, got, c.short)
		}
	}
	// The catalogue's watchdog story: 2s scaled by 0.3 is 0.6s, raised to 2s.
	s, err := scenarios.Read("mirror-stall-watchdog")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ShortForm().Spec.Validation.StallThreshold(); got != 2*time.Second {
		t.Errorf("mirror-stall-watchdog short form threshold %s, want 2s", got)
	}
}

// TestStallWatchdogOffSwitch: stallWatchdog: off is the one way to switch
// the watchdog off (threshold 0, which the validator reads as off);
// stallAfter: 0 is refused (before: it silently meant the 30s default, so
// a re-partitioning mirror could not turn the watchdog off), as are off
// beside a stallAfter and an unknown value.
func TestStallWatchdogOffSwitch(t *testing.T) {
	s, err := withValidation(t, "stallWatchdog: off")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Spec.Validation.StallThreshold(); got != 0 {
		t.Errorf("stallWatchdog: off: threshold %s, want 0 (off)", got)
	}
	if got := s.ShortForm().Spec.Validation.StallThreshold(); got != 0 {
		t.Errorf("stallWatchdog: off: short form threshold %s, want 0 (off)", got)
	}
	s, err = withValidation(t, "stallWatchdog: on")
	if err != nil || s.Spec.Validation.StallThreshold() != scenarios.DefaultStallAfter {
		t.Errorf("stallWatchdog: on: err %v, want the default threshold", err)
	}
	for _, c := range []struct {
		lines []string
		want  []string
	}{
		{[]string{"stallAfter: 0"}, []string{"spec.validation.stallAfter", "is 0", "stallWatchdog: off"}},
		{[]string{"stallWatchdog: off", "stallAfter: 5s"}, []string{"spec.validation.stallAfter", "no effect"}},
		{[]string{"stallWatchdog: no"}, []string{"spec.validation.stallWatchdog", `"no"`}},
	} {
		_, err := withValidation(t, c.lines...)
		var es scenarios.Errors
		if !errors.As(err, &es) || len(es) != 1 {
			t.Errorf("%v: got %v, want exactly 1 error", c.lines, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(es[0].Error(), w) {
				t.Errorf("%v: error %q does not say %q", c.lines, es[0], w)
			}
		}
	}
}
