package testkit

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FranzProducer is a bare franz-go producer as a plain performance tool
// runs one (Apache Kafka's ProducerPerformance sends one payload over and
// over): acks=all, no idempotence, no compression, no linger, keys
// round-robin over Keys. The benchmarks compare kmt's loadgen with it on
// the same brokers in the same run.
type FranzProducer struct {
	Brokers []string
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error) // optional
	Topic   string
	Keys    [][]byte // one per stream
	// Value returns record i's value; nil: one constant payload of Size
	// bytes for every record.
	Value func(i int) []byte
	Size  int
}

// Produce writes n records and returns the wall time from creating the
// client to the last acknowledgement (client closed) and the process CPU
// time spent.
func (p FranzProducer) Produce(n int) (wall, cpu time.Duration, err error) {
	cpu0, start := ProcessCPU(), time.Now()
	opts := []kgo.Opt{kgo.SeedBrokers(p.Brokers...), kgo.DefaultProduceTopic(p.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(200000)}
	if p.Dial != nil {
		opts = append(opts, kgo.Dialer(p.Dial))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("bare franz-go producer: %w", err)
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	wg.Add(n)
	constant := make([]byte, p.Size)
	for i := range constant {
		constant[i] = 'a' + byte(i%26)
	}
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
		wg.Done()
	}
	for i := range n {
		v := constant
		if p.Value != nil {
			v = p.Value(i)
		}
		cl.Produce(context.Background(), &kgo.Record{Key: p.Keys[i%len(p.Keys)], Value: v}, promise)
	}
	wg.Wait()
	cl.Close()
	wall, cpu = time.Since(start), ProcessCPU()-cpu0
	if f := failed.Load(); f > 0 {
		return wall, cpu, fmt.Errorf("bare franz-go producer: %d of %d records failed (first: %v)", f, n, firstErr.Load())
	}
	return wall, cpu, nil
}
