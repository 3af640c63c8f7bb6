package checkpoint

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestEncodingMatchesMirrorMaker2 pins the bytes against the layout of
// Checkpoint.java's KEY_SCHEMA, HEADER_SCHEMA and VALUE_SCHEMA_V0, written
// out by hand: group "g", topic "source.t", partition 3, upstream 258,
// downstream 255, metadata "".
func TestEncodingMatchesMirrorMaker2(t *testing.T) {
	c := Checkpoint{Group: "g", Topic: "source.t", Partition: 3, Upstream: 258, Downstream: 255}
	wantKey := "0001" + hex.EncodeToString([]byte("g")) + "0008" + hex.EncodeToString([]byte("source.t")) + "00000003"
	wantVal := "0000" + "0000000000000102" + "00000000000000ff" + "0000"
	if got := hex.EncodeToString(c.Key()); got != wantKey {
		t.Errorf("key = %s, want %s", got, wantKey)
	}
	if got := hex.EncodeToString(c.Value()); got != wantVal {
		t.Errorf("value = %s, want %s", got, wantVal)
	}
	back, err := Decode(c.Key(), c.Value())
	if err != nil || back != c {
		t.Errorf("Decode = %+v, %v; want %+v", back, err, c)
	}
	if Topic("source") != "source.checkpoints.internal" {
		t.Errorf("Topic(source) = %q", Topic("source"))
	}
}

func TestDecodeRefusesWhatIsNotACheckpoint(t *testing.T) {
	c := Checkpoint{Group: "g", Topic: "t", Partition: 1, Upstream: 1, Downstream: 1, Metadata: "m"}
	for _, tc := range []struct {
		name       string
		key, value []byte
	}{
		{"short key", c.Key()[:3], c.Value()},
		{"key with bytes left", append(c.Key(), 0), c.Value()},
		{"version 1", c.Key(), append([]byte{0, 1}, c.Value()[2:]...)},
		{"short value", c.Key(), c.Value()[:10]},
		{"null metadata", c.Key(), append(bytes.Clone(c.Value()[:18]), 0xff, 0xff)},
		{"empty", nil, nil},
	} {
		if _, err := Decode(tc.key, tc.value); err == nil {
			t.Errorf("%s: decoded without error", tc.name)
		}
	}
}

// TestTranslateAsMirrorMaker2 follows OffsetSyncStore.translateDownstream:
// exactly at a sync: its downstream offset; past it: one more; before the
// first sync: no translation. A rewind (re-copy after a restart) replaces
// the syncs from there on.
func TestTranslateAsMirrorMaker2(t *testing.T) {
	var x Syncs
	for _, s := range []Sync{{0, 0}, {100, 100}, {200, 205}} {
		x.Add(s)
	}
	for _, tc := range []struct {
		up, down int64
		ok       bool
	}{{0, 0, true}, {1, 1, true}, {99, 1, true}, {100, 100, true}, {150, 101, true}, {200, 205, true}, {999, 206, true}} {
		d, ok := x.Translate(tc.up)
		if d != tc.down || ok != tc.ok {
			t.Errorf("Translate(%d) = %d, %v; want %d, %v", tc.up, d, ok, tc.down, tc.ok)
		}
	}
	x.Add(Sync{150, 300}) // copied again from 150 after a restart
	if x.Len() != 3 {
		t.Errorf("after a rewind to 150: %d syncs kept, want 3 (0, 100, 150)", x.Len())
	}
	if d, _ := x.Translate(200); d != 301 {
		t.Errorf("after the rewind Translate(200) = %d, want 301", d)
	}
	var empty Syncs
	if _, ok := empty.Translate(5); ok {
		t.Error("translated without any sync")
	}
	var late Syncs
	late.Add(Sync{50, 10})
	if _, ok := late.Translate(49); ok {
		t.Error("translated an offset before the first sync")
	}
}
