package mirror

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestChunkLenBoundsAWrite: the reference mirror's writes stay under
// writeChunkBytes so a broker with the default max.message.bytes (1 MiB)
// accepts them; a record above the bound goes alone. With chunkLen
// returning len(msgs) (one write for everything, as before), the
// record-fidelity story stuck 31 of 32 streams at their first pair of
// 512 KiB records (MESSAGE_TOO_LARGE on every retry).
func TestChunkLenBoundsAWrite(t *testing.T) {
	rec := func(n int) kafka.Message { return kafka.Message{Value: make([]byte, n)} }
	many := func(k, n int) []kafka.Message {
		out := make([]kafka.Message, k)
		for i := range out {
			out[i] = rec(n)
		}
		return out
	}
	cases := []struct {
		name string
		msgs []kafka.Message
		want int
	}{
		{"256 small records fit one write", many(256, 256), 256},
		{"two 512 KiB records go apart", many(2, 512<<10), 1},
		{"a record above the bound goes alone", append([]kafka.Message{rec(3 << 20)}, many(3, 10)...), 1},
		{"small records stop before a large one that would not fit", append(many(100, 1000), rec(700<<10)), 100},
		{"records up to the bound", many(10, 70<<10), 10},
		{"one past the bound", many(11, 70<<10), 10},
	}
	for _, c := range cases {
		if got := chunkLen(c.msgs); got != c.want {
			t.Errorf("%s: chunkLen = %d, want %d", c.name, got, c.want)
		}
	}
}
