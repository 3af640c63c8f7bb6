package validator

// Shards hand their states to the merge through a Kafka topic on the target
// cluster (every shard and the merge already reach it; pods share no disk):
// one state is gzipped JSON cut into chunks below Kafka's default 1 MiB
// message limit, keyed by the run id so a run's chunks stay in order on one
// partition. A shard that ran twice (a retried pod) publishes a new attempt;
// the merge takes each shard's last complete one.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// DefaultStatesTopic is where shards publish their states (target cluster).
const DefaultStatesTopic = "__kmt_validator_shards"

const stateChunk = 512 << 10

// PublishState writes s to topic (created with one partition if missing).
func PublishState(ctx context.Context, client kafkaclient.Config, topic string, s *ShardState) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(s); err != nil {
		return fmt.Errorf("encoding shard %d's state: %w", s.Shard, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing shard %d's state: %w", s.Shard, err)
	}
	client.ClientID = "kmt-validator-shard"
	cl, err := client.NewKgo(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(stateChunk+64<<10))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := ensureStatesTopic(ctx, cl, topic); err != nil {
		return err
	}
	b := buf.Bytes()
	n := (len(b) + stateChunk - 1) / stateChunk
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	attempt := hex.EncodeToString(nonce[:])
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		part := b[i*stateChunk : min(len(b), (i+1)*stateChunk)]
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(s.RunID), Value: part, Headers: []kgo.RecordHeader{
			{Key: "shard", Value: []byte(strconv.Itoa(s.Shard))}, {Key: "chunk", Value: []byte(strconv.Itoa(i))},
			{Key: "chunks", Value: []byte(strconv.Itoa(n))}, {Key: "attempt", Value: []byte(attempt)},
		}})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("publishing shard %d's state (%d bytes) to %q: %w", s.Shard, len(b), topic, err)
	}
	return nil
}

func ensureStatesTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := kadm.NewClient(cl).CreateTopic(cctx, 1, -1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating the shard state topic %q: %w", topic, err)
	}
	return nil
}

// stateParts collects one attempt's chunks.
type stateParts struct {
	chunks []([]byte)
	have   int
}

// ReadStates reads topic from the start until it holds a complete state of
// every shard 0..shards-1 of runID (each shard's last complete attempt), or
// ctx ends (the error says which shards are missing).
func ReadStates(ctx context.Context, client kafkaclient.Config, topic, runID string, shards int) ([]*ShardState, error) {
	client.ClientID = "kmt-validator-merge"
	cl, err := client.NewKgo(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20),
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	attempts := map[string]*stateParts{}
	done := map[int][]byte{}
	for len(done) < shards {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var missing []int
			for i := range shards {
				if done[i] == nil {
					missing = append(missing, i)
				}
			}
			return nil, fmt.Errorf("shard states of run %q in topic %q: shards %v did not publish before %w; did those shard pods finish (their logs say why not)?", runID, topic, missing, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != runID {
				return
			}
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			shard, e1 := strconv.Atoi(h["shard"])
			chunk, e2 := strconv.Atoi(h["chunk"])
			n, e3 := strconv.Atoi(h["chunks"])
			if e1 != nil || e2 != nil || e3 != nil || shard < 0 || shard >= shards || chunk < 0 || chunk >= n {
				return
			}
			id := h["shard"] + "/" + h["attempt"]
			p := attempts[id]
			if p == nil {
				p = &stateParts{chunks: make([][]byte, n)}
				attempts[id] = p
			}
			if chunk < len(p.chunks) && p.chunks[chunk] == nil {
				p.chunks[chunk] = r.Value
				p.have++
			}
			if p.have == len(p.chunks) {
				done[shard] = bytes.Join(p.chunks, nil)
			}
		})
	}
	out := make([]*ShardState, 0, shards)
	for i := range shards {
		zr, err := gzip.NewReader(bytes.NewReader(done[i]))
		if err != nil {
			return nil, fmt.Errorf("shard %d's state in %q: %w", i, topic, err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("shard %d's state in %q: %w", i, topic, err)
		}
		var s ShardState
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("shard %d's state in %q does not decode: %w", i, topic, err)
		}
		out = append(out, &s)
	}
	return out, nil
}
