package loadgen

import "time"

// Pacer turns a target rate into how many records are due at each instant.
// It is arithmetic only (no clock, no I/O): the caller passes the time
// elapsed since the load started, the records handed to the producer so far
// and the room left under the in-flight bound, and gets what to do next.
//
// Pacing is by schedule, not by ticker: record i is due at i/rate seconds
// (record 0 at t=0, so rate*duration records fit in the duration). When the
// producer falls more than one second of load behind (the cluster does not
// keep up), the excess is given up (Skipped) instead of being burst at the
// cluster when it recovers.
type Pacer struct {
	rate      float64       // records per second; 0: as fast as acknowledged
	count     uint64        // stop after this many; 0: no limit
	duration  time.Duration // stop after this long; 0: no limit
	chunk     uint64        // most records per step
	maxBehind uint64        // records of schedule kept when behind
	skipped   uint64
}

// maxWait bounds a wait so stop and progress checks stay prompt.
const maxWait = 50 * time.Millisecond

// NewPacer returns a pacer; chunk is the most records one step hands over
// (at least 1).
func NewPacer(rate float64, count uint64, duration time.Duration, chunk int) *Pacer {
	return &Pacer{rate: rate, count: count, duration: duration, chunk: uint64(max(chunk, 1)), maxBehind: uint64(max(rate, 1))}
}

// Step is what to do now: stop, send Send records, or wait up to Wait (a
// completion may end the wait earlier) and ask again.
type Step struct {
	Stop bool
	Send uint64
	Wait time.Duration
}

// Skipped is how many scheduled records were given up so far.
func (p *Pacer) Skipped() uint64 { return p.skipped }

// Next returns the step at elapsed, given sent records and room (records
// the in-flight bound still allows).
func (p *Pacer) Next(elapsed time.Duration, sent, room uint64) Step {
	if (p.duration > 0 && elapsed >= p.duration) || (p.count > 0 && sent >= p.count) {
		return Step{Stop: true}
	}
	due := sent + p.chunk
	if p.rate > 0 {
		// The epsilon keeps float rounding (100*9.99 = 998.99..) from
		// losing the record due exactly now.
		scheduled := uint64(p.rate*elapsed.Seconds()+1e-6) + 1
		due = max(scheduled, p.skipped) - p.skipped
		if due > sent+p.maxBehind {
			p.skipped += due - sent - p.maxBehind
			due = sent + p.maxBehind
		}
	}
	if p.count > 0 {
		due = min(due, p.count)
	}
	var n uint64
	if due > sent {
		n = min(due-sent, room, p.chunk)
	}
	if n > 0 {
		return Step{Send: n}
	}
	wait := maxWait
	if room > 0 && p.rate > 0 {
		// Record number sent+skipped (counting from 0) is due at that
		// many / rate seconds.
		next := time.Duration(float64(sent+p.skipped) / p.rate * float64(time.Second))
		wait = min(wait, max(next-elapsed, 0))
	}
	if p.duration > 0 {
		wait = min(wait, max(p.duration-elapsed, 0))
	}
	return Step{Wait: wait}
}
