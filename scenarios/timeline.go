package scenarios

import (
	"sort"
	"time"
)

// ShortForm returns a copy of the scenario with the short overrides applied
// (load duration, rate, warmup, recovery, drain; fault times scaled). A
// scenario without a short block is returned unchanged (copied).
func (s *Scenario) ShortForm() *Scenario {
	c := *s
	c.Spec.Timeline = append([]Fault(nil), s.Spec.Timeline...)
	sh := s.Spec.Short
	if sh == nil {
		return &c
	}
	if sh.Duration > 0 {
		c.Spec.Load.Duration = sh.Duration
	}
	if sh.Rate > 0 {
		c.Spec.Load.Rate = sh.Rate
	}
	if sh.Warmup > 0 {
		c.Spec.Warmup = sh.Warmup
	}
	if sh.Recovery > 0 {
		c.Spec.Recovery = sh.Recovery
	}
	if sh.Drain > 0 {
		c.Spec.Drain = sh.Drain
	}
	if k := sh.TimeScale; k > 0 && k != 1 {
		for i := range c.Spec.Timeline {
			f := &c.Spec.Timeline[i]
			f.At = Duration(time.Duration(float64(f.At) * k).Round(time.Millisecond))
			f.Duration = Duration(time.Duration(float64(f.Duration) * k).Round(time.Millisecond))
			if f.Params.Every > 0 {
				f.Params.Every = Duration(time.Duration(float64(f.Params.Every) * k).Round(time.Millisecond))
			}
		}
		c.Spec.Failover = c.Spec.Failover.scaled(k)
		c.Spec.Validation.StallAfter = scaledStallAfter(c.Spec.Validation.StallAfter, k)
		if rw := c.Spec.Assertions.RecoversWithin; rw != nil {
			r := *rw
			r.Value = Duration(time.Duration(float64(r.Value) * k).Round(time.Millisecond))
			c.Spec.Assertions.RecoversWithin = &r
		}
	}
	c.Spec.Short = nil
	return &c
}

// MinShortStallAfter is the least stall threshold a short form scales to:
// the validator reads end offsets once a second, so a shorter one would
// call the gap between two polls of a healthy mirror a stall. A threshold
// written below it is kept as written.
const MinShortStallAfter = 2 * time.Second

// scaledStallAfter scales the stall threshold by k like the fault windows:
// unscaled, the default 30s outlasts a short form's scaled pause and the
// stall is never seen.
func scaledStallAfter(d Duration, k float64) Duration {
	s := Duration(time.Duration(float64(d) * k).Round(time.Millisecond))
	return max(s, min(d, Duration(MinShortStallAfter)))
}

// Phase is one named window of the timeline, relative to load start.
type Phase struct {
	Name  string        `json:"name"` // warmup, steady, fault:<name>, recovery, drain
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"` // for drain: the deadline (the run may end earlier)
}

// Phases returns the planned phases in start order. Fault windows may
// overlap each other; warmup, steady, recovery and drain do not.
func (s *Scenario) Phases() []Phase {
	d := s.Spec.Load.Duration.D()
	w := s.Spec.Warmup.D()
	ps := []Phase{}
	if w > 0 {
		ps = append(ps, Phase{"warmup", 0, w})
	}
	firstStart, lastEnd := d, time.Duration(-1)
	for _, f := range s.Spec.Timeline {
		firstStart = min(firstStart, f.At.D())
		lastEnd = max(lastEnd, f.End())
		ps = append(ps, Phase{"fault:" + f.Name, f.At.D(), f.End()})
	}
	if firstStart > w {
		ps = append(ps, Phase{"steady", w, firstStart})
	}
	if lastEnd >= 0 && lastEnd < d {
		ps = append(ps, Phase{"recovery", lastEnd, d})
	}
	ps = append(ps, Phase{"drain", d, d + s.Spec.Drain.D()})
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Start < ps[j].Start })
	return ps
}

// FaultByName returns the timeline entry with that name.
func (s *Scenario) FaultByName(name string) (Fault, bool) {
	for _, f := range s.Spec.Timeline {
		if f.Name == name {
			return f, true
		}
	}
	return Fault{}, false
}
