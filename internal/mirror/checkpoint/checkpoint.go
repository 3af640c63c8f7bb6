// Package checkpoint is MirrorMaker 2's consumer-group checkpoint format
// (connect/mirror-client Checkpoint.java, unchanged from 2.4 to 4.3) and
// its offset translation rule (OffsetSyncStore.translateDownstream), written
// from the Java sources, not copied: kmt's failover drill reads checkpoints
// of any MirrorMaker 2 with it, and the reference mirror writes them.
//
// A checkpoint record sits in partition 0 of "<source alias>.checkpoints.internal"
// on the target. Both key and value are Kafka protocol structs (big-endian
// integers, strings as int16 length + UTF-8):
//
//	key:   group string, topic string, partition int32
//	value: version int16 (0), upstreamOffset int64, offset int64, metadata string
//
// topic is the target (downstream) topic name; upstreamOffset is the group's
// committed offset on the source, offset its translation on the target.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// TopicSuffix ends the checkpoints topic's name: MirrorMaker 2's
// DefaultReplicationPolicy (and IdentityReplicationPolicy) name it
// "<source alias>.checkpoints.internal".
const TopicSuffix = ".checkpoints.internal"

// Topic is the checkpoints topic of flows from the cluster alias source.
func Topic(sourceAlias string) string { return sourceAlias + TopicSuffix }

// Version is the only value format MirrorMaker 2 writes.
const Version = 0

// Checkpoint is one translated committed offset of a consumer group.
type Checkpoint struct {
	Group      string
	Topic      string // the target topic
	Partition  int32
	Upstream   int64 // committed offset on the source
	Downstream int64 // where the group resumes on the target
	Metadata   string
}

// Key encodes the record key.
func (c Checkpoint) Key() []byte {
	b := appendString(nil, c.Group)
	b = appendString(b, c.Topic)
	return binary.BigEndian.AppendUint32(b, uint32(c.Partition))
}

// Value encodes the record value (version 0).
func (c Checkpoint) Value() []byte {
	b := binary.BigEndian.AppendUint16(nil, Version)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Upstream))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Downstream))
	return appendString(b, c.Metadata)
}

// Decode reads one checkpoint record. A record that is not a checkpoint
// (truncated, another version, bytes left over) is an error that says why;
// MirrorClient skips such records, and so does the drill (counting them).
func Decode(key, value []byte) (Checkpoint, error) {
	var c Checkpoint
	k := reader{b: key}
	c.Group, c.Topic, c.Partition = k.str(), k.str(), k.i32()
	if err := k.done("key"); err != nil {
		return c, err
	}
	v := reader{b: value}
	if ver := v.i16(); v.err == nil && ver != Version {
		return c, fmt.Errorf("checkpoint value version %d: only version %d exists (MirrorMaker 2 2.4-4.3)", ver, Version)
	}
	c.Upstream, c.Downstream, c.Metadata = v.i64(), v.i64(), v.str()
	if err := v.done("value"); err != nil {
		return c, err
	}
	return c, nil
}

func appendString(b []byte, s string) []byte {
	if len(s) > math.MaxInt16 {
		s = s[:math.MaxInt16]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// reader reads Kafka protocol types; the first short read sticks in err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = fmt.Errorf("needs %d more bytes, %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) i16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) i32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) i64() int64 {
	if b := r.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (r *reader) str() string {
	n := r.i16()
	if r.err == nil && n < 0 {
		r.err = errors.New("null string where MirrorMaker 2 writes a non-null one")
		return ""
	}
	return string(r.take(int(n)))
}

func (r *reader) done(what string) error {
	if r.err != nil {
		return fmt.Errorf("checkpoint %s: %w", what, r.err)
	}
	if len(r.b) > 0 {
		return fmt.Errorf("checkpoint %s: %d bytes left over", what, len(r.b))
	}
	return nil
}

// Sync says the source record at Upstream was written at Downstream on the
// target (MirrorMaker 2's OffsetSync).
type Sync struct{ Upstream, Downstream int64 }

// Syncs are the offset syncs of one partition, oldest first, with
// MirrorMaker 2's translation rule. Not safe for concurrent use.
type Syncs struct{ s []Sync }

// Add records a sync. An upstream offset at or below an earlier one (the
// mirror copies again after a restart) drops the syncs from there on, as
// MirrorMaker 2's store does on an upstream rewind: the newer copy is the
// one a group resuming there reads next.
func (x *Syncs) Add(s Sync) {
	i := sort.Search(len(x.s), func(i int) bool { return x.s[i].Upstream >= s.Upstream })
	x.s = append(x.s[:i], s)
}

// Len is the number of syncs kept.
func (x *Syncs) Len() int { return len(x.s) }

// Translate is MirrorMaker 2's translateDownstream: with the latest sync at
// or before the committed upstream offset, the group resumes at that sync's
// downstream offset when it is exactly there, else one past it (records
// between the sync and the committed offset are read again: never skipped).
// ok is false when no sync is at or before upstream (MirrorMaker 2 emits no
// checkpoint then).
func (x *Syncs) Translate(upstream int64) (downstream int64, ok bool) {
	i := sort.Search(len(x.s), func(i int) bool { return x.s[i].Upstream > upstream }) - 1
	if i < 0 {
		return 0, false
	}
	s := x.s[i]
	if s.Upstream == upstream {
		return s.Downstream, true
	}
	return s.Downstream + 1, true
}
