package mirror

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestPieceLenSendsLargeRecordsAlone: the reference mirror's producer cuts
// batches at batchMaxBytes, so a broker with the default max.message.bytes
// (1 MiB) accepts them, and a record above writeChunkBytes goes alone
// through the large-record producer, after every record before it. With
// records above the bound left in the batch producer (pieceLen returning
// len(msgs)), kgo fails them before sending (larger than its batch bound)
// and the record-fidelity story's 512 KiB records plus their neighbours
// never leave.
func TestPieceLenSendsLargeRecordsAlone(t *testing.T) {
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
		{"small records go together", many(2048, 256), 2048},
		{"512 KiB records go together (the producer cuts the batches)", many(2, 512<<10), 2},
		{"a record above the bound goes alone", append([]kafka.Message{rec(3 << 20)}, many(3, 10)...), 1},
		{"small records stop before a large one", append(many(100, 1000), rec(800<<10)), 100},
		{"a record at the bound is not large", many(3, writeChunkBytes-64), 3},
		{"one byte past it is", many(3, writeChunkBytes-63), 1},
	}
	for _, c := range cases {
		if got := pieceLen(c.msgs); got != c.want {
			t.Errorf("%s: pieceLen = %d, want %d", c.name, got, c.want)
		}
	}
}
