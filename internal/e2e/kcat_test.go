package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

// kcatPath finds kcat, installing Debian's package when running as root
// (as CI does through scripts/install-deps.sh). Without kcat and without
// root the test is skipped.
func kcatPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("kcat"); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Skip("kcat not on PATH and not root: install Debian's kcat package (scripts/install-deps.sh)")
	}
	out, err := exec.Command("apt-get", "install", "-y", "kcat").CombinedOutput()
	if err != nil {
		t.Fatalf("apt-get install -y kcat: %v\n%s", err, out)
	}
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat still not on PATH after apt-get install: %v", err)
	}
	return p
}

// kcatMirror is the pipe mirror. kcat's producer holds back its last lines
// until stdin ends (edenhill/kcat#322), so an endless `kcat -C | kcat -P`
// would leave the tail unsent: the consumer exits at the end of its
// partitions (-e), which flushes the producer, and the loop resumes from the
// group's committed offsets (-G; librdkafka commits on close). A short
// session timeout: after a hard kill the dead member stays in the group
// until its session expires, and with librdkafka's default 45 s the
// restarted kcat waited past the drain (measured: 5010 of 7999 unseen).
func kcatMirror(kcat string) string {
	return `while :; do ` + kcat + ` -C -q -u -e -b {{.SourceBootstrap}} -G {{.Group}} -X auto.offset.reset=earliest -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000 -K '\x1f' {{.SourceTopic}}` +
		` | ` + kcat + ` -P -q -b {{.TargetBootstrap}} -t {{.TargetTopic}} -K '\x1f'; sleep 0.2; done`
}

// header matches the printable kmt record header: run, stream, sequence.
var header = regexp.MustCompile(`^kmt[1-3] c=[0-9a-f]{8} r=(\S+) (?:e=\d+ o=\S* )?s=(\d+) q=(\d+) `)

// targetRead is what an independent kcat consumer found on the target.
type targetRead struct {
	total   int                       // every record
	ours    int                       // records with this run's header
	pairs   map[uint32]map[uint64]int // stream -> seq -> copies
	readErr error
}

// readTarget consumes the whole target topic with kcat, independently of
// the validator (another client library, another parser).
func readTarget(kcat, bootstrap, topic, run string) targetRead {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-e", "-q", "-b", bootstrap, "-t", topic, "-o", "beginning", "-f", "%s\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	tr := targetRead{pairs: map[uint32]map[uint64]int{}}
	if err != nil {
		tr.readErr = fmt.Errorf("%s: %w; stderr: %s", cmd, err, stderr.Bytes())
		return tr
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		tr.total++
		m := header.FindSubmatch(sc.Bytes())
		if m == nil || string(m[1]) != run {
			continue
		}
		s, err1 := strconv.ParseUint(string(m[2]), 10, 32)
		q, err2 := strconv.ParseUint(string(m[3]), 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		tr.ours++
		if tr.pairs[uint32(s)] == nil {
			tr.pairs[uint32(s)] = map[uint64]int{}
		}
		tr.pairs[uint32(s)][q]++
	}
	tr.readErr = sc.Err()
	return tr
}

// TestKcatPipeMirror runs a kcat pipe mirror under the baseline and under
// hard kills, and checks the validator's verdict against an independent kcat
// consumer of the target.
func TestKcatPipeMirror(t *testing.T) {
	skipShort(t)
	t.Parallel()
	kcat := kcatPath(t)
	for _, tc := range []struct {
		scenario  string
		mustPass  bool
		minStarts int // mirror log files: one per start
	}{
		{"baseline", true, 1},
		{"mirror-hard-kill", false, 2},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			var tr targetRead
			runID := runner.NewRunID("e2e-kcat-" + tc.scenario)
			o := runner.Options{Scenario: tc.scenario, Short: true, MirrorCommand: kcatMirror(kcat), RunID: runID}
			o.BeforeTeardown = func(_, target string) {
				tr = readTarget(kcat, target, "orders", runID)
			}
			r := run(t, o)
			if tr.readErr != nil {
				t.Fatalf("independent kcat consumer of the target failed: %v", tr.readErr)
			}
			logs, _ := filepath.Glob(filepath.Join(r.dir, "mirror-*.log"))
			if len(logs) < tc.minStarts {
				t.Errorf("mirror log files in the report dir: %v; want at least %d (one per start)", logs, tc.minStarts)
			}
			c := r.rep.Counts
			if tc.mustPass && r.rep.Verdict != "pass" {
				t.Errorf("kcat pipe mirror verdict %q under %s, reasons %v; want pass", r.rep.Verdict, tc.scenario, r.rep.Reasons)
			}
			if r.rep.ExtraCounts.Failed != 0 || r.rep.ExtraCounts.Truncated != 0 {
				t.Fatalf("failed=%d truncated=%d: the per-stream sequence model below assumes every sent record was acked and kept", r.rep.ExtraCounts.Failed, r.rep.ExtraCounts.Truncated)
			}
			distinct := 0
			for _, seqs := range tr.pairs {
				distinct += len(seqs)
			}
			t.Logf("%s: kcat read %d records (%d of this run, %d distinct (stream, seq)); validator received=%d foreign=%d corrupt=%d other_runs=%d acked=%d lost=%d unseen=%d duplicate=%d",
				tc.scenario, tr.total, tr.ours, distinct, c.Received, c.Foreign, c.Corrupt, r.rep.ExtraCounts.OtherRuns, c.Acked, c.Lost, c.Unseen, c.Duplicate)
			if want := c.Received + c.Foreign + c.Corrupt + r.rep.ExtraCounts.OtherRuns; uint64(tr.total) != want {
				t.Errorf("kcat read %d records on the target; the validator saw received+foreign+corrupt+other_runs = %d", tr.total, want)
			}
			if uint64(tr.ours) != c.Received+c.Corrupt {
				t.Errorf("kcat read %d records of this run; the validator received %d (+%d corrupt)", tr.ours, c.Received, c.Corrupt)
			}
			if uint64(distinct) != c.Acked-c.Lost-c.Unseen {
				t.Errorf("kcat saw %d distinct (stream, seq); validator acked-lost-unseen = %d-%d-%d = %d", distinct, c.Acked, c.Lost, c.Unseen, c.Acked-c.Lost-c.Unseen)
			}
			if uint64(tr.ours-distinct) != c.Duplicate {
				t.Errorf("kcat saw %d extra copies; validator duplicate = %d", tr.ours-distinct, c.Duplicate)
			}
			// The loadgen sends stream by stream, round-robin, from seq 0:
			// with nothing failed, stream s was acked seqs 0..last(s). What
			// kcat misses below the highest seq it saw of a stream is lost,
			// above it unseen: the validator's own definitions.
			streams := uint64(32) // the catalogue scenarios' load.streams
			var lost, unseen uint64
			for s := uint64(0); s < streams; s++ {
				n := c.Acked / streams
				if s < c.Acked%streams {
					n++
				}
				seqs := tr.pairs[uint32(s)]
				var top int64 = -1
				for q := range seqs {
					if int64(q) > top {
						top = int64(q)
					}
					if q >= n {
						t.Errorf("stream %d seq %d on the target was never acked (stream acked 0..%d)", s, q, n-1)
					}
				}
				for q := uint64(0); q < n; q++ {
					if seqs[q] == 0 {
						if int64(q) < top {
							lost++
						} else {
							unseen++
						}
					}
				}
			}
			t.Logf("%s: from kcat's view lost=%d unseen=%d", tc.scenario, lost, unseen)
			if lost != c.Lost || unseen != c.Unseen {
				t.Errorf("kcat's view: lost=%d unseen=%d; validator: lost=%d unseen=%d", lost, unseen, c.Lost, c.Unseen)
			}
		})
	}
}
