package report

import (
	"strings"
	"testing"
)

// TestSectionReasons: each load-mode finding fails the run with its count;
// duplicates fail only when the mirror claims exactly-once.
func TestSectionReasons(t *testing.T) {
	cases := []struct {
		name string
		rep  Report
		want string // "" = pass
	}{
		{"clean sections pass", Report{Transactions: &Transactions{Duplicates: 3}, Fidelity: &Fidelity{Headers: &Check{Checked: 9}, Large: &Large{Acked: 2, Delivered: 2}}}, ""},
		{"torn", Report{Transactions: &Transactions{Torn: 2, TornMissing: 5}}, "2 torn transactions"},
		{"duplicates under exactly-once", Report{Transactions: &Transactions{ExactlyOnce: true, Duplicates: 3}}, "3 duplicates although the mirror runs exactly-once"},
		{"headers", Report{Fidelity: &Fidelity{Headers: &Check{Checked: 9, Changed: 4}}}, "4 records whose headers changed"},
		{"timestamps", Report{Fidelity: &Fidelity{Timestamps: &Check{Checked: 9, Changed: 1}}}, "1 records whose timestamp changed"},
		{"tombstones", Report{Fidelity: &Fidelity{Tombstones: &Tombstones{Acked: 5, Missing: 5}}}, "5 tombstones"},
		{"compaction", Report{Fidelity: &Fidelity{Compaction: &Compaction{Differ: 7}}}, "7 keys whose final value differs"},
		{"stuck", Report{Fidelity: &Fidelity{Large: &Large{Stuck: []string{"topic t stream 1: stops at seq 7"}}}}, "1 target partitions where the mirror is stuck"},
	}
	for _, tc := range cases {
		r := tc.rep
		r.Judge()
		switch {
		case tc.want == "" && r.Verdict != Pass:
			t.Errorf("%s: verdict %s %v, want pass", tc.name, r.Verdict, r.Reasons)
		case tc.want != "" && (r.Verdict != Fail || !strings.Contains(strings.Join(r.Reasons, ";"), tc.want)):
			t.Errorf("%s: verdict %s %v, want fail with %q", tc.name, r.Verdict, r.Reasons, tc.want)
		}
	}
}
