package validator

import (
	"testing"
	"time"
)

// A config, a partition count and a new topic, each seen on the target at
// a known poll: exact times, the late one fails, the never-copied setting
// is reported and not waited for.
func TestSyncWatch(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	never := func(k string) bool { return k == "min.insync.replicas" }
	w := NewSyncWatch(10*time.Second, never)
	w.AddConfig("cfg", "orders", "source.orders", map[string]string{"retention.ms": "60000", "cleanup.policy": "compact, delete", "min.insync.replicas": "2"}, at(0))
	w.AddPartitions("grow", "orders", "source.orders", 9, at(1))
	w.AddTopic("new", "payments", "source.payments", 3, at(2))
	if got := w.Pending(); len(got) != 2 || got[0] != "source.orders" || got[1] != "source.payments" {
		t.Fatalf("Pending = %v", got)
	}
	orders := func(parts int, cfg map[string]string) TopicState {
		return TopicState{Exists: true, Partitions: parts, Configs: cfg}
	}
	polls := []struct {
		s     int
		state map[string]TopicState
		seen  int
	}{
		{3, map[string]TopicState{"source.orders": orders(6, map[string]string{"retention.ms": "604800000"}), "source.payments": {}}, 0},
		{4, map[string]TopicState{"source.orders": orders(6, map[string]string{"retention.ms": "60000", "cleanup.policy": "compact,delete"})}, 2},
		{7, map[string]TopicState{"source.orders": orders(9, map[string]string{"retention.ms": "60000"}), "source.payments": orders(2, nil)}, 1},
		{14, map[string]TopicState{"source.payments": orders(3, nil)}, 1}, // 12 s after its change: late
	}
	for _, p := range polls {
		if got := w.Observe(at(p.s), p.state); len(got) != p.seen {
			t.Errorf("poll at %ds: %d changes seen %+v, want %d", p.s, len(got), got, p.seen)
		}
	}
	if !w.Settled(at(14)) {
		t.Error("not settled after every change was seen or late")
	}
	rep := w.Report([]string{"min.insync.replicas"})
	want := map[string]struct {
		synced, late, never bool
		secs                float64
		observed            string
	}{
		"cleanup.policy=compact, delete": {true, false, false, 4, ""},
		"min.insync.replicas=2":          {false, false, true, -1, "min.insync.replicas not set"},
		"retention.ms=60000":             {true, false, false, 4, ""},
		"9 partitions":                   {true, false, false, 6, ""},
		"new topic, 3 partitions":        {false, true, false, 12, ""},
	}
	if len(rep.Changes) != len(want) || rep.WithinSeconds != 10 || len(rep.NeverCopied) != 1 {
		t.Fatalf("report %+v", rep)
	}
	for _, c := range rep.Changes {
		wn, ok := want[c.What]
		secs := -1.0
		if c.Seconds != nil {
			secs = *c.Seconds
		}
		if !ok || c.Synced != wn.synced || c.Late != wn.late || c.NeverCopied != wn.never || secs != wn.secs || c.Observed != wn.observed {
			t.Errorf("%s: %+v (seconds %v), want %+v", c.What, c, secs, wn)
		}
	}
}

// A change the target never shows keeps the watch waiting until its window
// passes, and says what the target had.
func TestSyncWatchNeverSeen(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	w := NewSyncWatch(5*time.Second, nil)
	w.AddTopic("new", "payments", "payments", 3, t0)
	w.Observe(t0.Add(2*time.Second), map[string]TopicState{"payments": {}})
	if w.Settled(t0.Add(5 * time.Second)) {
		t.Error("settled inside the window with the topic missing")
	}
	if !w.Settled(t0.Add(6 * time.Second)) {
		t.Error("not settled after the window")
	}
	c := w.Report(nil).Changes[0]
	if c.Synced || c.Late || c.Seconds != nil || c.Observed != "no such topic on the target" {
		t.Errorf("%+v", c)
	}
}

// TestSyncWatchOverwrittenConfig: retention.ms set to 1000 and, 2s later,
// to 2000; a mirror syncing every 5s copies only 2000. Both changes count
// as synced when 2000 shows (the first was overwritten before the sync);
// 3000 on the target satisfies neither. Before: the first change was
// never seen and failed the run (1 change not synced of 2).
func TestSyncWatchOverwrittenConfig(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := NewSyncWatch(10*time.Second, nil)
	w.AddConfig("a", "orders", "orders", map[string]string{"retention.ms": "1000"}, t0)
	w.AddConfig("b", "orders", "orders", map[string]string{"retention.ms": "2000"}, t0.Add(2*time.Second))
	w.AddConfig("c", "users", "users", map[string]string{"retention.ms": "2000"}, t0)
	w.Observe(t0.Add(4*time.Second), map[string]TopicState{"orders": {Exists: true, Configs: map[string]string{"retention.ms": "3000"}}})
	if n := len(w.Pending()); n != 2 {
		t.Fatalf("after 3000 on the target: %d topics pending, want 2", n)
	}
	seen := w.Observe(t0.Add(5*time.Second), map[string]TopicState{"orders": {Exists: true, Configs: map[string]string{"retention.ms": "2000"}}})
	synced := 0
	for _, c := range w.Report(nil).Changes {
		if c.Synced {
			synced++
		}
	}
	if len(seen) != 2 || synced != 2 {
		t.Fatalf("2000 on orders: %d changes seen, %d synced; want 2 and 2 (users' change is on another topic)", len(seen), synced)
	}
}
