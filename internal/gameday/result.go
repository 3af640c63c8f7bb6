package gameday

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

const (
	resultJSON = "game-day.json"
	resultHTML = "game-day.html"
)

// Outcomes of a game day and statuses of a step.
const (
	Held    = "held"     // every hypothesis held
	NotHeld = "not-held" // a check broke or kmt's verdict failed; the day went on
	Halted  = "halted"   // a halt condition broke (or pre-flight failed): faults healed, day stopped
	Aborted = "aborted"  // an operator stopped it
	Skipped = "skipped"  // not run: the day stopped before
	Errored = "error"    // the step could not run
)

// Result is game-day.json.
type Result struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Owner       string       `json:"owner"`
	AbortOwner  string       `json:"abort_owner"`
	Backend     string       `json:"backend"`
	StartedAt   time.Time    `json:"started_at"`
	EndedAt     time.Time    `json:"ended_at"`
	Outcome     string       `json:"outcome"`
	Reason      string       `json:"reason,omitempty"` // why it stopped early
	Preflight   []CheckOut   `json:"preflight"`
	Steps       []StepResult `json:"steps"`
	Findings    []string     `json:"findings"`
	KMT         report.Build `json:"kmt"`
}

// StepResult is one step's section of the report.
type StepResult struct {
	Name       string `json:"name"`
	Hypothesis string `json:"hypothesis"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	ReportDir  string `json:"report_dir,omitempty"` // relative to the game day's folder
	// RunID is the step's run on Kubernetes (the kmt.dev/run label; kmt
	// abort --run-id removes it by hand).
	RunID string `json:"run_id,omitempty"`
	// Cleanup is what removing the step's run left (Kubernetes).
	Cleanup   *Cleanup        `json:"cleanup,omitempty"`
	Verdict   string          `json:"verdict,omitempty"`
	Reasons   []string        `json:"verdict_reasons,omitempty"`
	StartedAt time.Time       `json:"started_at"`
	EndedAt   time.Time       `json:"ended_at"`
	Checks    []CheckOut      `json:"checks"`
	Halt      *Halt           `json:"halt,omitempty"`
	Faults    []FaultOut      `json:"faults,omitempty"`
	Alert     *AlertOut       `json:"alert,omitempty"`
	Recorded  []string        `json:"recorded,omitempty"`
	Counts    *report.Counts  `json:"counts,omitempty"`
	Latency   *report.Latency `json:"latency_seconds,omitempty"`
	MaxLag    int64           `json:"max_lag,omitempty"`
	// AnnotationErrors: what Grafana answered when an annotation failed
	// (the first few).
	AnnotationErrors []string `json:"annotation_errors,omitempty"`
}

// CheckOut is one check evaluated at one moment (before, during, after,
// pre-flight) or over a window (during: the first break, else the last).
type CheckOut struct {
	Check    string  `json:"check"`
	When     string  `json:"when"`
	Held     bool    `json:"held"`
	Observed float64 `json:"observed"`
	Detail   string  `json:"detail"`
	At       float64 `json:"at_seconds"` // since the step's load started
}

// Halt is why a step stopped early and what was healed.
type Halt struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// AtSeconds since the step's load started.
	AtSeconds float64 `json:"at_seconds"`
	// Active are the faults whose window was open when it broke.
	Active []string `json:"active_faults"`
	// Healed are the objects removed at the halt (Kubernetes: Chaos Mesh
	// objects first, then the agents and the rest of the run), and
	// HealSeconds how long removing them took, waiting included.
	Healed      []string `json:"healed,omitempty"`
	HealSeconds float64  `json:"heal_seconds,omitempty"`
	// FaultsGoneSeconds: from the halt until every Chaos Mesh object of
	// the run had been deleted in both clusters (the first thing done);
	// AgentsGoneSeconds until the fault agents had stopped too.
	FaultsGoneSeconds float64 `json:"faults_gone_seconds,omitempty"`
	AgentsGoneSeconds float64 `json:"agents_gone_seconds,omitempty"`
}

// Cleanup is the removal of a step's run from its clusters.
type Cleanup struct {
	Removed int      `json:"removed"`         // objects deleted
	Left    []string `json:"left"`            // objects still there at the end (finalizers)
	Notes   []string `json:"notes,omitempty"` // what could not be searched and why
	Error   string   `json:"error,omitempty"`
}

// FaultOut is a fault as it really happened, with its planned end.
type FaultOut struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	AppliedAt  time.Time `json:"applied_at"`
	RevertedAt time.Time `json:"reverted_at"`
	PlannedEnd time.Time `json:"planned_end"`
	Actions    []string  `json:"actions,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// AlertOut is the time-to-detect of a step's expected alert.
type AlertOut struct {
	Name         string  `json:"name"`
	Within       float64 `json:"within_seconds"`
	Fired        bool    `json:"fired"`
	TimeToDetect float64 `json:"time_to_detect_seconds,omitempty"` // from the first fault's start
	Error        string  `json:"error,omitempty"`
}

func (r *Result) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, resultJSON+".tmp"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the game day report: %w", err)
	}
	if err := writeHTML(dir, r); err != nil {
		return err
	}
	return os.Rename(filepath.Join(dir, resultJSON+".tmp"), filepath.Join(dir, resultJSON))
}

// ReadResult reads a game day's game-day.json.
func ReadResult(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, resultJSON))
	if err != nil {
		return nil, err
	}
	var r Result
	return &r, json.Unmarshal(b, &r)
}

// findings lists, one line each, what someone should follow up.
func (r *Result) findings() []string {
	var out []string
	for _, s := range r.Steps {
		p := "[" + s.Name + "] "
		switch s.Status {
		case Halted, Aborted:
			out = append(out, p+s.Status+": "+s.Reason)
		case NotHeld:
			out = append(out, p+"hypothesis did not hold (\""+s.Hypothesis+"\"): "+s.Reason)
		case Errored:
			out = append(out, p+"could not run: "+s.Reason)
		}
		if c := s.Cleanup; c != nil && (len(c.Left) > 0 || c.Error != "") {
			out = append(out, fmt.Sprintf("%sobjects of run %s are left in the clusters (%s%s): kmt abort --run-id %s", p, s.RunID, strings.Join(c.Left, ", "), c.Error, s.RunID))
		}
		if len(s.AnnotationErrors) > 0 {
			out = append(out, p+"Grafana annotations failed: "+s.AnnotationErrors[0])
		}
		for _, f := range s.Faults {
			if f.Error != "" {
				out = append(out, fmt.Sprintf("%sfault %s (%s) did not take effect as planned: %s", p, f.Name, f.Kind, f.Error))
			}
		}
		if a := s.Alert; a != nil {
			switch {
			case a.Error != "":
				out = append(out, fmt.Sprintf("%salert %s could not be checked: %s", p, a.Name, a.Error))
			case !a.Fired:
				out = append(out, fmt.Sprintf("%salert %s never fired (expected within %gs of the fault): nobody would have noticed", p, a.Name, a.Within))
			case a.TimeToDetect > a.Within:
				out = append(out, fmt.Sprintf("%salert %s fired after %.0fs, later than the %gs expected", p, a.Name, a.TimeToDetect, a.Within))
			}
		}
	}
	if len(out) == 0 {
		out = append(out, "every hypothesis held; nothing to follow up")
	}
	return out
}
