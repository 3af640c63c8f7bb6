package mirror

import (
	"strings"
	"testing"
	"time"
)

// TestMM2PropertiesForTheFailoverDrill: the drill turns on MirrorMaker 2's
// group offset sync at its short interval; without it the property is
// absent (MirrorMaker 2's default: off).
func TestMM2PropertiesForTheFailoverDrill(t *testing.T) {
	base := MM2Settings{SourceBootstrap: "s:1", TargetBootstrap: "t:1", Topics: []string{"orders"}, CheckpointInterval: 2 * time.Second}
	on := base
	on.SyncGroupOffsets = true
	for _, tc := range []struct {
		s    MM2Settings
		want []string
		not  []string
	}{
		{on, []string{"\nsync.group.offsets.enabled=true\n", "\nemit.checkpoints.interval.seconds=2\n", "\nsync.group.offsets.interval.seconds=2\n"}, nil},
		{base, []string{"\nemit.checkpoints.interval.seconds=2\n"}, []string{"sync.group.offsets.enabled"}},
	} {
		props, err := MM2Properties(tc.s)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(props, w) {
				t.Errorf("SyncGroupOffsets=%v: %q missing from\n%s", tc.s.SyncGroupOffsets, strings.TrimSpace(w), props)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(props, n) {
				t.Errorf("SyncGroupOffsets=%v: %q should not be set", tc.s.SyncGroupOffsets, n)
			}
		}
	}
}
