package health

import (
	"context"
	"sync"
	"time"
)

// LagSample is, at one instant, how many records had been appended to the
// target topics and how many of them kmt's validator had read.
type LagSample struct {
	At       time.Time
	Appended int64
	Read     int64
}

// ReadLag is the validator's own read lag: for each sample, how long the
// validator took until it had read as many records as were appended then,
// and the longest of these. The moment it got there is interpolated between
// the two samples around it (reading is steady between samples), so the lag
// is not rounded up to the sampling interval. A sample the validator never
// caught up with counts until the last sample (a lower bound). Counts are
// taken relative to the first sample. The mirror's delay is not in it: a
// record counts as appended only once the mirror wrote it.
func ReadLag(s []LagSample) time.Duration {
	if len(s) < 2 {
		return 0
	}
	a0, r0 := s[0].Appended, s[0].Read
	var worst time.Duration
	j := 0
	for i := range s {
		want := s[i].Appended - a0
		j = max(j, i)
		for j < len(s)-1 && s[j].Read-r0 < want {
			j++
		}
		at := s[j].At
		if got := s[j].Read - r0; got >= want && j > i {
			prev := s[j-1].Read - r0
			frac := float64(want-prev) / float64(got-prev)
			at = s[j-1].At.Add(time.Duration(frac * float64(s[j].At.Sub(s[j-1].At))))
		}
		worst = max(worst, at.Sub(s[i].At))
	}
	return worst
}

// LagMeter samples appended and read counts at a fixed interval until Stop.
type LagMeter struct {
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	samples []LagSample
	result  time.Duration
	ok      bool
}

// StartReadLag samples every interval: appended asks the cluster (errors
// skip the sample), read asks the validator.
func StartReadLag(ctx context.Context, every time.Duration, appended func(context.Context) (int64, error), read func() int64) *LagMeter {
	m := &LagMeter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if a, err := appended(ctx); err == nil {
				m.samples = append(m.samples, LagSample{At: time.Now(), Appended: a, Read: read()})
			}
			select {
			case <-m.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Stop ends sampling and returns the read lag in seconds, or -1 when fewer
// than two samples were taken (not measured).
func (m *LagMeter) Stop() float64 {
	m.once.Do(func() {
		close(m.stop)
		<-m.done
		m.result, m.ok = ReadLag(m.samples), len(m.samples) >= 2
	})
	if !m.ok {
		return -1
	}
	return m.result.Seconds()
}
