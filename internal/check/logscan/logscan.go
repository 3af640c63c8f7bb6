// Package logscan reads the records a topic holds right now: every partition
// from a starting point to the end offset it had when the scan began, then
// stops. kmt uses it to look for a run id before producing (is this run id
// already in use?) and the ledger uses it to read its topic.
package logscan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// DialFunc dials a broker; nil means net.Dialer.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options say what to scan.
type Options struct {
	Brokers []string
	Dial    DialFunc
	// Security is TLS / SASL (internal/kafkaclient); zero: plaintext.
	Security kafkaclient.Security
	Topics   []string
	// Tail, when > 0, reads only the last Tail records of each partition
	// (the newest ones, where a reused run id shows first); 0 reads all.
	Tail int64
	// ClientID names the scan in broker logs.
	ClientID string
}

// Result says what the scan covered.
type Result struct {
	Missing []string // topics that do not exist (nothing scanned there)
	Records int64    // records read
}

// Scan calls fn for each record between the start point and the end offset
// each partition had when the scan began. fn returns false to stop early.
// Scan ends with ctx's error if the records do not arrive in time.
func Scan(ctx context.Context, o Options, fn func(*kgo.Record) bool) (Result, error) {
	var res Result
	opts, err := kafkaclient.Config{Brokers: o.Brokers, Dial: kafkaclient.DialFunc(o.Dial), ClientID: o.ClientID, Security: o.Security}.KgoOpts()
	if err != nil {
		return res, err
	}
	opts = append(opts, kgo.MetadataMinAge(250*time.Millisecond))
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		return res, fmt.Errorf("client for %v: %w", o.Brokers, err)
	}
	defer adm.Close()
	from, ends, missing, err := bounds(ctx, kadm.NewClient(adm), o)
	if err != nil {
		return res, err
	}
	res.Missing = missing
	if len(from) == 0 {
		return res, nil
	}
	// Control records (transaction markers) are kept so a partition whose
	// log ends in a commit marker is seen read to its end; fn never gets them.
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(from), kgo.KeepControlRecords())...)
	if err != nil {
		return res, fmt.Errorf("consumer for %v: %w", o.Brokers, err)
	}
	defer cl.Close()
	left := 0
	for _, ps := range ends {
		left += len(ps)
	}
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return res, fmt.Errorf("scanning %v: %d partitions not read to their end: %w", o.Topics, left, ctx.Err())
		}
		stop := false
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			end, ok := ends[p.Topic][p.Partition]
			if !ok {
				return
			}
			for _, r := range p.Records {
				if stop || r.Offset >= end {
					break
				}
				if r.Attrs.IsControl() {
					continue
				}
				res.Records++
				if !fn(r) {
					stop = true
				}
			}
			if n := len(p.Records); n > 0 && p.Records[n-1].Offset+1 >= end {
				delete(ends[p.Topic], p.Partition)
				left--
			}
		})
		if stop {
			return res, nil
		}
	}
	return res, nil
}

// bounds returns where to start reading each non-empty partition and the end
// offset (exclusive) to read to, and which topics do not exist.
func bounds(ctx context.Context, adm *kadm.Client, o Options) (map[string]map[int32]kgo.Offset, map[string]map[int32]int64, []string, error) {
	starts, err := adm.ListStartOffsets(ctx, o.Topics...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listing start offsets of %v: %w", o.Topics, err)
	}
	endsL, err := adm.ListEndOffsets(ctx, o.Topics...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listing end offsets of %v: %w", o.Topics, err)
	}
	from := map[string]map[int32]kgo.Offset{}
	ends := map[string]map[int32]int64{}
	var missing []string
	for _, t := range o.Topics {
		ps, ok := endsL[t]
		if !ok {
			missing = append(missing, t)
			continue
		}
		for p, e := range ps {
			if e.Err != nil {
				if errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
					missing = append(missing, t) // kadm's partition -1 for a missing topic
					break
				}
				return nil, nil, nil, fmt.Errorf("end offset of %s[%d]: %w", t, p, e.Err)
			}
			s, ok := starts.Lookup(t, p)
			if !ok || s.Err != nil {
				return nil, nil, nil, fmt.Errorf("start offset of %s[%d] unknown (%v)", t, p, s.Err)
			}
			begin := s.Offset
			if o.Tail > 0 {
				begin = max(begin, e.Offset-o.Tail)
			}
			if e.Offset <= begin {
				continue // empty (or purged to its end)
			}
			if from[t] == nil {
				from[t], ends[t] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			from[t][p] = kgo.NewOffset().At(begin)
			ends[t][p] = e.Offset
		}
	}
	return from, ends, missing, nil
}
