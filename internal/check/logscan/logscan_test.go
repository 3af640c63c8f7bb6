package logscan

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestScanReadsToTheEndItSawAndHonoursTail: with 3 partitions holding 5, 3
// and 0 records, a full scan reads exactly 8, a tail of 2 reads 2+2, a
// missing topic is reported and not scanned, and stopping early stops.
func TestScanReadsToTheEndItSawAndHonoursTail(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(3, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for p, n := range []int{5, 3, 0} {
		for i := range n {
			r := &kgo.Record{Topic: "t", Partition: int32(p), Value: []byte(fmt.Sprintf("p%d-%d", p, i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name    string
		topics  []string
		tail    int64
		stopAt  int
		want    []string
		missing []string
	}{
		{"all", []string{"t"}, 0, 0, []string{"p0-0", "p0-1", "p0-2", "p0-3", "p0-4", "p1-0", "p1-1", "p1-2"}, nil},
		{"tail 2", []string{"t"}, 2, 0, []string{"p0-3", "p0-4", "p1-1", "p1-2"}, nil},
		{"missing topic", []string{"nope", "t"}, 1, 0, []string{"p0-4", "p1-2"}, []string{"nope"}},
		{"stop after 1", []string{"t"}, 0, 1, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			res, err := Scan(ctx, Options{Brokers: brokers, Topics: tc.topics, Tail: tc.tail}, func(r *kgo.Record) bool {
				got = append(got, string(r.Value))
				return tc.stopAt == 0 || len(got) < tc.stopAt
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.stopAt > 0 {
				if len(got) != tc.stopAt {
					t.Fatalf("read %d records after asking to stop at %d", len(got), tc.stopAt)
				}
				return
			}
			// Partitions interleave in fetches: compare per partition order.
			sortByPartition(got)
			if !reflect.DeepEqual(got, tc.want) || res.Records != int64(len(tc.want)) || !reflect.DeepEqual(res.Missing, tc.missing) {
				t.Fatalf("got %v (records %d, missing %v), want %v (missing %v)", got, res.Records, res.Missing, tc.want, tc.missing)
			}
		})
	}
}

// sortByPartition orders "pP-I" values by partition, keeping each
// partition's order (a stable insertion sort on the partition digit).
func sortByPartition(v []string) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j][1] < v[j-1][1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}
