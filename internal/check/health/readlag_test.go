package health

import (
	"testing"
	"time"
)

func TestReadLag(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1000+int64(s), 0) }
	cases := []struct {
		name string
		s    []LagSample
		want time.Duration
	}{
		{"one sample", []LagSample{{at(0), 5, 5}}, 0},
		{"keeps up", []LagSample{{at(0), 0, 0}, {at(1), 100, 100}, {at(2), 200, 200}}, 0},
		{"one second behind", []LagSample{{at(0), 0, 0}, {at(1), 100, 0}, {at(2), 200, 100}, {at(3), 200, 200}}, time.Second},
		// What was appended at 1 s (100) is read at 3 s + 60/260 of a second.
		{"falls behind then catches up", []LagSample{{at(0), 0, 0}, {at(1), 100, 10}, {at(2), 200, 20}, {at(3), 300, 40}, {at(4), 300, 300}},
			2*time.Second + 230769231*time.Nanosecond},
		// Read half a second after the sample: not rounded up to 1 s.
		{"a short lag is not rounded to the interval", []LagSample{{at(0), 0, 0}, {at(1), 100, 0}, {at(2), 100, 200}}, 500 * time.Millisecond},
		{"never catches up: lower bound to the last sample", []LagSample{{at(0), 0, 0}, {at(1), 100, 0}, {at(5), 100, 50}}, 4 * time.Second},
		{"counts relative to the first sample", []LagSample{{at(0), 1000, 7}, {at(1), 1100, 107}}, 0},
	}
	for _, tc := range cases {
		if got := ReadLag(tc.s); (got - tc.want).Abs() > time.Microsecond {
			t.Errorf("%s: ReadLag = %s, want %s", tc.name, got, tc.want)
		}
	}
}
