package report

import (
	"strings"
	"testing"
	"time"
)

// The verdict rules of metadata_sync and stalls: a change not seen within
// the window and a stall never recovered fail; a setting never copied by
// design, a late-but-synced-in-time change and a recovered stall do not.
func TestJudgeSyncAndStalls(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	four := 4.0
	cases := []struct {
		name    string
		ms      *MetadataSync
		st      *Stalls
		reasons []string // substrings, one per reason
	}{
		{"all synced, stall recovered", &MetadataSync{WithinSeconds: 30, Changes: []SyncChange{{Kind: "config", What: "retention.ms=1", Synced: true, Seconds: &four}}},
			&Stalls{Events: []StallEvent{{Kind: StallKind, Start: t0, Recovered: true}}}, nil},
		{"never copied by design is not judged", &MetadataSync{WithinSeconds: 30, Changes: []SyncChange{{Kind: "config", What: "min.insync.replicas=2", NeverCopied: true}}}, nil, nil},
		{"a change never seen fails", &MetadataSync{WithinSeconds: 30, Changes: []SyncChange{{Kind: "topic", What: "new topic, 3 partitions", Fault: "new"}}}, nil,
			[]string{"metadata_sync: new topic, 3 partitions (topic)"}},
		{"a late change fails", &MetadataSync{WithinSeconds: 3, Changes: []SyncChange{{Kind: "partitions", What: "9 partitions", Late: true, Seconds: &four}}}, nil,
			[]string{"appeared only after 4.0s"}},
		{"an open stall fails, a rewind does not", nil,
			&Stalls{Events: []StallEvent{{Kind: StallKind, Topic: "t", Partition: 0, Start: t0, SourceGained: 7}, {Kind: RewindKind, Start: t0, Recovered: true}}},
			[]string{"lost", "stalled: target t partition 0"}},
		// A run that lost 7 records in partition 0: an open stall of
		// partition 1, whose source gained only a commit marker (no
		// missing record was read there), is reported, not blamed; the
		// stall holding the 7 is.
		{"an open stall fails, one holding none of the missing records does not", nil,
			&Stalls{Events: []StallEvent{{Kind: StallKind, Topic: "t", Partition: 0, Start: t0, SourceGained: 7, MissingHere: ptrU(7)},
				{Kind: StallKind, Topic: "t", Partition: 1, Start: t0, SourceGained: 1, MissingHere: ptrU(0)}}},
			[]string{"lost", "stalled: target t partition 0"}},
		// The source gained only what a correct mirror never copies (an
		// aborted last transaction): every acked record arrived.
		{"an open stall with nothing missing is reported, not judged", nil,
			&Stalls{Events: []StallEvent{{Kind: StallKind, Topic: "t", Partition: 0, Start: t0, SourceGained: 11}}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Report{StartedAt: t0, MetadataSync: c.ms, Stalls: c.st}
			if strings.HasPrefix(c.name, "an open stall fails") {
				// the 7 records the stall withheld
				r.Counts = Counts{Acked: 20, Received: 13, Lost: 7}
			}
			r.Judge()
			if len(r.Reasons) != len(c.reasons) {
				t.Fatalf("reasons %q, want %d", r.Reasons, len(c.reasons))
			}
			for i, want := range c.reasons {
				if !strings.Contains(r.Reasons[i], want) {
					t.Errorf("reason %q, want it to say %q", r.Reasons[i], want)
				}
			}
			if want := map[bool]string{true: Pass, false: Fail}[len(c.reasons) == 0]; r.Verdict != want {
				t.Errorf("verdict %s, want %s", r.Verdict, want)
			}
		})
	}
}

func ptrU(n uint64) *uint64 { return &n }
