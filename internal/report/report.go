// Package report is kmt's verdict: report.json (a versioned contract that CI
// pipelines parse), a summary for people, and JUnit XML for CI systems.
//
// report.json contract, schema_version 1 (fields are only ever added within a
// version; a rename or removal bumps schema_version):
//
//	schema_version  int      1
//	verdict         string   "pass" | "fail" | "incomplete" (interrupted, could not finish, or a fault did not take effect while nothing else failed)
//	reasons         []string why the verdict is not pass (empty on pass)
//	scenario, run, backend, mirror, short
//	started_at, ended_at     RFC 3339
//	counts          exactly: produced acked received lost unseen duplicate
//	                redelivery reordered corrupt foreign source_lost, and
//	                (added in v1, fail the run when non-zero):
//	                aborted_read      records of aborted transactions a
//	                                  read_uncommitted reader saw (G1a)
//	                identity_mismatch intact value under the wrong key, in
//	                                  the wrong topic, or with a damaged kmt
//	                                  header (example "what" says which)
//	                split             records of a stream the source kept in
//	                                  one partition that arrived in another
//	                                  target partition than the stream's main one
//	extra_counts    truncated (deleted by the source before the mirror copied
//	                them), failed (sends the source rejected), other_runs
//	latency_seconds p50 p95 p99 max (mirror latency: target read time minus
//	                produce time, first arrivals only), count, [negative
//	                most_negative] (clock skew: reported, never clamped)
//	redelivery_latency_seconds  the same for duplicates (re-copies), when any
//	examples        category -> first few {topic stream seq seq_end partition offset detail
//	                [what source_partition source_offset produced_at fault]}: partition
//	                and offset are the target's; the bracketed keys are added
//	                when known (produced_at: when the record was produced, its ack
//	                follows within the producer's round trip; fault: the fault
//	                active then)
//	phases          [{name start end}] absolute times
//	faults          [{name kind start end actions error}]
//	assertions      [{name expr window mode op threshold observed pass reason ...}]
//	drain           {complete seconds}
//	load            {target_rate achieved_rate sent acked failed seconds}
//	timeline        [{t arrivals latency_p50 produced acked lag latency_p99
//	                latency_max anomalies}] per second since load start:
//	                arrivals  records of this run read from the target in that second
//	                latency_p50/_p99/_max  of those arrivals, seconds (0: none arrived)
//	                produced  records handed to the source producer in that second
//	                acked     records the source acknowledged in that second
//	                lag       acked so far minus distinct records delivered so far,
//	                          sampled at the end of that second
//	                anomalies category -> newly detected in that second (lost,
//	                          duplicate, reordered, corrupt; omitted when none). Lost is
//	                          the live classification: it appears when a later record
//	                          shows the gap; the final figures are in counts
//	                The fields after latency_p50 were added in schema 1 (runs that
//	                wrote none have zeros).
//	load_started_at RFC 3339, the t=0 of timeline and extra_series (absent if unknown)
//	extra_series    [{name unit points:[{t v}]}] more per-second series a part
//	                recorded (e.g. a mirror's own metrics), same time axis
//	transactions    (transactional load) {size abort_fraction transactions
//	                aborted_transactions aborted_records aborted_copied seen
//	                torn torn_missing exactly_once duplicates}: aborted_copied,
//	                torn, and duplicates when exactly_once fail the run
//	fidelity        (fidelity load) {headers timestamps tombstones compaction
//	                large compression}, each {checked changed ...} with exact
//	                counts; any changed, a differing key, a large record
//	                stuck fail the run (see sections.go)
//	counts.aborted_copied (added in v1) records of aborted source
//	                transactions a read_committed reader of the target saw
//	kmt             {version commit} of the kmt that wrote the report
//	command         the command line of the process that wrote the report
//	failover        the failover drill, when the scenario has one (failover.go):
//	                {group lag offsets stopped_at resumed_at reread_bound bound_from
//	                partitions:[{topic partition source_committed translated
//	                translated_from resumed_from skipped reread backwards untranslated ...}]
//	                skipped reread duplicate_reads backwards untranslated verdict reasons}
//	metadata_sync, stalls  see sync.go
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/health"
)

// SchemaVersion of report.json.
const SchemaVersion = 1

// Verdicts.
const (
	Pass       = "pass"
	Fail       = "fail"
	Incomplete = "incomplete"
)

// Counts has exactly the keys of the report.json contract.
type Counts struct {
	Produced   uint64 `json:"produced"`
	Acked      uint64 `json:"acked"`
	Received   uint64 `json:"received"`
	Lost       uint64 `json:"lost"`
	Unseen     uint64 `json:"unseen"`
	Duplicate  uint64 `json:"duplicate"`
	Redelivery uint64 `json:"redelivery"`
	Reordered  uint64 `json:"reordered"`
	Corrupt    uint64 `json:"corrupt"`
	Foreign    uint64 `json:"foreign"`
	SourceLost uint64 `json:"source_lost"`
	// Added within schema v1 (see the contract above).
	AbortedRead      uint64 `json:"aborted_read"`
	IdentityMismatch uint64 `json:"identity_mismatch"`
	Split            uint64 `json:"split"`
	// AbortedCopied: records of transactions the loadgen aborted that a
	// read_committed reader of the target saw (the mirror copied aborted
	// data as committed records; see Report.Transactions).
	AbortedCopied uint64 `json:"aborted_copied"`
}

// Add adds o to c, category by category.
func (c *Counts) Add(o Counts) {
	c.Produced += o.Produced
	c.Acked += o.Acked
	c.Received += o.Received
	c.Lost += o.Lost
	c.Unseen += o.Unseen
	c.Duplicate += o.Duplicate
	c.Redelivery += o.Redelivery
	c.Reordered += o.Reordered
	c.Corrupt += o.Corrupt
	c.Foreign += o.Foreign
	c.SourceLost += o.SourceLost
	c.AbortedRead += o.AbortedRead
	c.IdentityMismatch += o.IdentityMismatch
	c.Split += o.Split
	c.AbortedCopied += o.AbortedCopied
}

// ExtraCounts are counted apart from the anomaly categories.
type ExtraCounts struct {
	Truncated uint64 `json:"truncated"`
	Failed    uint64 `json:"failed"`
	OtherRuns uint64 `json:"other_runs"`
}

// Latency summarises mirror latency in seconds.
type Latency struct {
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Count uint64  `json:"count"`
	// Added within schema v1: first arrivals read before their produce
	// time (clock skew between hosts), not in the quantiles above, and the
	// most negative apparent latency (seconds, <= 0).
	Negative     uint64  `json:"negative,omitempty"`
	MostNegative float64 `json:"most_negative,omitempty"`
}

// Example is evidence for one anomaly.
type Example struct {
	Topic     string `json:"topic"`
	Stream    uint32 `json:"stream"`
	Seq       uint64 `json:"seq"`
	SeqEnd    uint64 `json:"seq_end,omitempty"` // for ranges (lost, unseen, ...)
	Partition int    `json:"partition"`         // -1 for ranges (lost, unseen, source_lost, truncated)
	Offset    int64  `json:"offset"`            // -1 when not applicable
	Detail    string `json:"detail,omitempty"`
	// Added within schema v1; set when known.
	What            string     `json:"what,omitempty"` // identity_mismatch: key, topic or header
	SourcePartition *int       `json:"source_partition,omitempty"`
	SourceOffset    *int64     `json:"source_offset,omitempty"`
	ProducedAt      *time.Time `json:"produced_at,omitempty"`
	Fault           string     `json:"fault,omitempty"` // fault active at ProducedAt
}

// Phase is one window of the timeline as it happened.
type Phase struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Fault is one timeline entry as it happened.
type Fault struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Actions []string  `json:"actions,omitempty"` // what was done, e.g. "killed source broker 2"
	Error   string    `json:"error,omitempty"`
}

// Assertion is one evaluated assertion.
type Assertion struct {
	Name      string    `json:"name"`
	Expr      string    `json:"expr"`
	Window    string    `json:"window"`
	Mode      string    `json:"mode"`
	Op        string    `json:"op"`
	Threshold []float64 `json:"threshold"` // one value, or [low, high] for between
	Observed  []float64 `json:"observed"`
	Pass      bool      `json:"pass"`
	Reason    string    `json:"reason,omitempty"`
	Builtin   bool      `json:"builtin"`
}

// Second is one second of the timeline (T seconds after load start); see the
// contract above for what each field counts.
type Second struct {
	T          int               `json:"t"`
	Arrivals   uint64            `json:"arrivals"`
	LatencyP50 float64           `json:"latency_p50"` // seconds; 0 when nothing arrived
	Produced   uint64            `json:"produced"`
	Acked      uint64            `json:"acked"`
	Lag        int64             `json:"lag"`
	LatencyP99 float64           `json:"latency_p99"`
	LatencyMax float64           `json:"latency_max"`
	Anomalies  map[string]uint64 `json:"anomalies,omitempty"`
}

// Series is one extra per-second series on the timeline's axis (a mirror's
// own metrics, for example): plotted beside kmt's own, grouped by Unit.
type Series struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"` // e.g. "records/s", "seconds", "records"
	Points []Point `json:"points"`
}

// Point is one value of a Series, T seconds after load start.
type Point struct {
	T float64 `json:"t"`
	V float64 `json:"v"`
}

// Build names the kmt that wrote a report.
type Build struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
}

// Drain records the final drain.
type Drain struct {
	Complete bool    `json:"complete"`
	Seconds  float64 `json:"seconds"`
}

// Load records what the loadgen did.
type Load struct {
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Sent         uint64  `json:"sent"`
	Acked        uint64  `json:"acked"`
	Failed       uint64  `json:"failed"`
	Seconds      float64 `json:"seconds"`
}

// Report is report.json.
type Report struct {
	SchemaVersion int      `json:"schema_version"`
	Verdict       string   `json:"verdict"`
	Reasons       []string `json:"reasons"`
	Scenario      string   `json:"scenario"`
	Run           string   `json:"run"`
	Backend       string   `json:"backend"`
	Mirror        string   `json:"mirror"`
	// Brokers says which clusters kmt started: "embedded" or
	// "apache-kafka-<version>" (empty for the user's own clusters).
	Brokers        string      `json:"brokers,omitempty"`
	Short          bool        `json:"short"`
	StartedAt      time.Time   `json:"started_at"`
	EndedAt        time.Time   `json:"ended_at"`
	Counts         Counts      `json:"counts"`
	ExtraCounts    ExtraCounts `json:"extra_counts"`
	LatencySeconds Latency     `json:"latency_seconds"`
	// RedeliveryLatencySeconds: latency of duplicates (re-copies), apart
	// from the mirror latency (added within schema v1).
	RedeliveryLatencySeconds *Latency             `json:"redelivery_latency_seconds,omitempty"`
	Examples                 map[string][]Example `json:"examples"`
	Phases                   []Phase              `json:"phases"`
	Faults                   []Fault              `json:"faults"`
	Assertions               []Assertion          `json:"assertions"`
	Drain                    Drain                `json:"drain"`
	Load                     Load                 `json:"load"`
	// Harness is kmt's own health over the load (internal/check/health): when it
	// was saturated, timing assertions are incomplete, not failed.
	Harness       *health.Report `json:"harness,omitempty"`
	SourceChecked bool           `json:"source_checked"`
	// Timeline is what arrived at the target, second by second since the
	// load started: it shows a fault taking effect (a partition stops
	// arrivals, WAN latency raises the median).
	Timeline      []Second   `json:"timeline"`
	LoadStartedAt *time.Time `json:"load_started_at,omitempty"`
	ExtraSeries   []Series   `json:"extra_series,omitempty"`
	KMT           Build      `json:"kmt"`
	Command       []string   `json:"command,omitempty"`
	// MirrorMetrics are the mirror's own numbers beside kmt's (MirrorMaker
	// 2: its JMX beans' record count, replication latency, task counts),
	// by series name; informational, never judged.
	MirrorMetrics map[string]float64 `json:"mirror_metrics,omitempty"`
	// MirrorExits are exits of the mirror's process that kmt did not ask
	// for (a crash, a command that ends by itself).
	MirrorExits []MirrorExit `json:"mirror_exits,omitempty"`
	// Failover is the failover drill's verdict (failover.go), when the
	// scenario has one.
	Failover *Failover `json:"failover,omitempty"`
	// Hints say what to check when the counts point at the setup rather
	// than the mirror (nothing of the run arrived, say); set by Judge.
	Hints []string `json:"hints,omitempty"`
	Error string   `json:"error,omitempty"`
	// Transactions and Fidelity are the verdicts of the transactional and
	// record-fidelity load modes (sections.go), when the scenario used them.
	Transactions *Transactions `json:"transactions,omitempty"`
	Fidelity     *Fidelity     `json:"fidelity,omitempty"`
	// MetadataSync and Stalls: sync.go (added within schema v1).
	MetadataSync *MetadataSync `json:"metadata_sync,omitempty"`
	Stalls       *Stalls       `json:"stalls,omitempty"`
}

// MirrorExit is one exit of the mirror's process that kmt did not ask for.
type MirrorExit struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"` // "exit status 1", "signal: killed"
	Log    string    `json:"log"`    // its output file
	Tail   string    `json:"tail"`   // the last lines of its output
}

// Judge sets Verdict and Reasons from the counts and assertions. The anomaly
// checks: lost, unseen, corrupt, reordered and source_lost fail the run;
// duplicates are what an at-least-once mirror does (they fail only through
// an assertion such as maxDuplicates); redelivery is kmt's own re-read,
// foreign records and other runs' records are counted, never judged;
// truncated records were deleted by the source, not lost by the mirror.
// An Incomplete verdict (set by the caller) is kept.
func (r *Report) Judge() {
	r.annotateFaults()
	r.Reasons = nil
	c := r.Counts
	for _, x := range []struct {
		n    uint64
		what string
	}{
		{c.Lost, "lost: acknowledged by the source, missing at the target below what arrived"},
		{c.Unseen, "unseen: acknowledged, never arrived before the drain deadline"},
		{c.Corrupt, "corrupt: checksum or payload mismatch"},
		{c.Reordered, "reordered: a lower sequence after a higher one in the same partition"},
		{c.SourceLost, "source_lost: acknowledged but missing from the source log itself"},
		{c.AbortedRead, "aborted_read: records of aborted transactions read by a read_uncommitted reader"},
		{c.IdentityMismatch, "identity_mismatch: intact value under the wrong key, in the wrong topic, or with a damaged kmt header"},
		{c.Split, "split: records of a stream the source kept in one partition arrived in several target partitions"},
		{c.AbortedCopied, "aborted_copied: records of aborted source transactions visible to a read_committed reader of the target"},
	} {
		if x.n > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	r.annotateStalls()
	r.Reasons = append(r.Reasons, r.syncReasons()...)
	r.Reasons = append(r.Reasons, r.sectionReasons()...) // sections.go
	for _, a := range r.Assertions {
		if !a.Pass {
			r.Reasons = append(r.Reasons, fmt.Sprintf("assertion %s failed: %s", a.Name, a.Reason))
		}
	}
	r.Reasons = append(r.Reasons, r.failoverReasons()...)
	mirrorReasons := len(r.Reasons)
	for _, f := range r.Faults {
		// A fault that failed or never happened makes the run prove less
		// than it claims: never a silent no-op, never a pass. It is kmt's
		// (or the backend's) failure, not the mirror's, so on its own it
		// makes the verdict incomplete, not failed. One left out because
		// the run was interrupted is already an incomplete verdict.
		if f.Error != "" && !(r.Verdict == Incomplete && f.Start.IsZero()) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("fault %s (%s) did not take effect as planned: %s", f.Name, f.Kind, f.Error))
		}
	}
	if f := r.Failover; f != nil && f.Verdict == Incomplete {
		r.Reasons = append(r.Reasons, "failover drill incomplete: "+f.Error) // kmt's failure, like a fault that did not happen
	}
	faultReasons := len(r.Reasons) - mirrorReasons
	for _, e := range r.MirrorExits {
		r.Reasons = append(r.Reasons, fmt.Sprintf("the mirror process exited on its own at %s with %s: %s (see %s)", relTime(r.StartedAt, e.At), e.Status, lastLine(e.Tail), e.Log))
	}
	if r.Error != "" {
		r.Reasons = append(r.Reasons, "error: "+r.Error)
	}
	r.Hints = r.hints()
	if r.Verdict == Incomplete {
		return
	}
	switch {
	case len(r.Reasons) == 0:
		r.Verdict = Pass
	case len(r.Reasons) == faultReasons:
		r.Verdict = Incomplete
	default:
		r.Verdict = Fail
	}
}

// annotateFaults names, in each example produced at a known time, the
// fault that was active then (the first, by start time, if several were).
func (r *Report) annotateFaults() {
	for _, ex := range r.Examples {
		for i := range ex {
			e := &ex[i]
			if e.ProducedAt == nil || e.Fault != "" {
				continue
			}
			for _, f := range r.Faults {
				if !f.Start.IsZero() && !e.ProducedAt.Before(f.Start) && (f.End.IsZero() || !e.ProducedAt.After(f.End)) {
					e.Fault = f.Name
					break
				}
			}
		}
	}
}

// WriteJSON writes report.json into dir (created if needed), atomically.
func (r *Report) WriteJSON(dir string) (string, error) {
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	if r.Reasons == nil {
		r.Reasons = []string{}
	}
	if r.Examples == nil {
		r.Examples = map[string][]Example{}
	}
	if r.KMT.Version == "" {
		r.KMT = CurrentBuild()
	}
	if r.Command == nil {
		r.Command = os.Args
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create report dir %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "report.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	return path, os.Rename(tmp, path)
}

// ReadJSON reads a report.json.
func ReadJSON(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &r, nil
}

// LoadStart is the t=0 of the timeline: the recorded load start, else the
// first phase's start (reports written before load_started_at existed),
// else the run's start.
func (r *Report) LoadStart() time.Time {
	if r.LoadStartedAt != nil {
		return *r.LoadStartedAt
	}
	for _, p := range r.Phases {
		if !p.Start.IsZero() {
			return p.Start
		}
	}
	return r.StartedAt
}
