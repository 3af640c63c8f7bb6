package runner

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/health"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// judgeHarness records kmt's own health over the load in the report. When
// kmt was saturated, a failed timing assertion (latency, lag: anything over
// the validator's latency or lag metrics) measured kmt's own queueing as
// much as the mirror's: it is marked incomplete with the reason, and a run
// that failed only on such assertions is incomplete, not failed. Anomalies
// (loss, corruption, ...) do not depend on kmt's speed and still fail it.
func judgeHarness(rep *report.Report, cpu health.CPU, readLag float64, ls loadgen.Stats, targetRate float64) {
	h := health.NewReport(health.Sample{TargetRate: targetRate, AchievedRate: ls.Rate(), Skipped: ls.Skipped, CPU: cpu, ReadLagSeconds: readLag})
	rep.Harness = h
	if !h.Saturated {
		return
	}
	why := "kmt itself was saturated: " + strings.Join(h.Reasons, "; ")
	timing := map[string]bool{}
	for i := range rep.Assertions {
		a := &rep.Assertions[i]
		if !a.Pass && isTimingExpr(a.Expr) {
			timing["assertion "+a.Name+" failed: "+a.Reason] = true
			a.Reason = "incomplete (" + why + "): " + a.Reason
		}
	}
	onlyTiming := rep.Verdict == report.Fail
	for _, r := range rep.Reasons {
		if !timing[r] {
			onlyTiming = false
		}
	}
	if onlyTiming {
		rep.Verdict = report.Incomplete
	}
	if rep.Verdict != report.Pass { // a timing assertion that held while kmt was slow still holds
		rep.Reasons = append(rep.Reasons, why)
	}
}

// isTimingExpr: the assertion measures time through the validator, so kmt's
// own queueing is part of what it observed.
func isTimingExpr(expr string) bool {
	return strings.Contains(expr, metrics.ValidatorLatency) || strings.Contains(expr, metrics.ValidatorLag)
}

// Harness measures kmt itself while a load runs (internal/check/health): the
// process's CPU and scheduling, and the validator's own read lag. `kmt run`
// and `kmt validate` both use it.
type Harness struct {
	cpu *health.CPUMeter
	lag func() float64
}

// StartHarness starts measuring; target reaches the target cluster, whose
// end offsets the read lag compares with what val has read.
func StartHarness(ctx context.Context, target kafkaclient.Config, pairs []validator.TopicPair, val *validator.Validator) *Harness {
	return &Harness{cpu: health.StartCPU(time.Second), lag: startReadLag(ctx, target, pairs, val)}
}

// LoadEnded stops the CPU measure at the end of the load (the drain after
// it is reading, not producing). Safe to call more than once.
func (h *Harness) LoadEnded() { h.cpu.Stop() }

// Stop ends every measure (what Judge does too); for paths that end
// without a report. Safe to call more than once.
func (h *Harness) Stop() {
	h.cpu.Stop()
	h.lag()
}

// Judge stops the measures and records kmt's health in rep (judgeHarness);
// call it after rep.Judge. ls is the load's outcome (zero when another
// process ran the load) and targetRate what it was asked for.
func (h *Harness) Judge(rep *report.Report, ls loadgen.Stats, targetRate float64) {
	judgeHarness(rep, h.cpu.Stop(), h.lag(), ls, targetRate)
}

// startReadLag measures the validator's own read lag (health.ReadLag): every
// 250 ms it compares the target topics' end offsets with how far the
// validator has read them (Validator.TargetRead). It returns the function that stops it and
// gives the lag in seconds (-1: not measured); calling it again returns the
// same.
func startReadLag(ctx context.Context, target kafkaclient.Config, pairs []validator.TopicPair, val *validator.Validator) func() float64 {
	target.ClientID = "kmt-harness"
	cl, err := target.NewKgo()
	if err != nil {
		return func() float64 { return -1 }
	}
	adm := kadm.NewClient(cl)
	var topics []string
	for _, p := range pairs {
		topics = append(topics, p.Target)
	}
	appended := func(ctx context.Context) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return 0, err
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err == nil {
				n += o.Offset
			}
		})
		return n, nil
	}
	// Positions, not records: a transactional target's end offsets count
	// its commit markers too (a record count made every transactional run
	// "saturated": the validator 65 s behind, the run incomplete).
	read := val.TargetRead
	m := health.StartReadLag(ctx, 250*time.Millisecond, appended, read)
	return sync.OnceValue(func() float64 {
		lag := m.Stop()
		cl.Close()
		return lag
	})
}
