package runner

import (
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// Issue 9 class 5: a drain that ended with target records still unread is
// an incomplete verdict, never a pass; a drain that ended with everything
// read but records missing is judged on them.
func TestUnreadTargetDataMakesTheVerdictIncomplete(t *testing.T) {
	for _, tc := range []struct {
		name     string
		res      validator.Result
		want     string
		wantText string
	}{
		{"unread target data", validator.Result{DrainComplete: false, TargetUnread: true}, report.Incomplete, "still unread"},
		{"everything read, drain complete", validator.Result{DrainComplete: true}, report.Pass, ""},
		{"everything read, records missing", validator.Result{DrainComplete: false, Counts: report.Counts{Acked: 3, Received: 2, Unseen: 1}}, report.Fail, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &report.Report{}
			ApplyResult(rep, &tc.res)
			rep.Judge()
			if rep.Verdict != tc.want {
				t.Fatalf("verdict %s (error %q, reasons %v), want %s", rep.Verdict, rep.Error, rep.Reasons, tc.want)
			}
			if tc.wantText != "" && !strings.Contains(rep.Error, tc.wantText) {
				t.Fatalf("error %q does not say %q", rep.Error, tc.wantText)
			}
		})
	}
}
