package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

// The transactional load (Config.Transactions): franz-go's transactional
// producer writes Size records per transaction (round-robin over topics and
// streams like all load) and aborts the transactions
// scenarios.Transactions.Aborted names. A record's outcome is known only
// when its transaction ends, so the produce promises are collected and the
// ledger is written after EndTransaction:
//
//   - committed: every record acked;
//   - aborted on purpose, or because a record of it failed: every record
//     aborted (in the source log, never committed: a read_committed reader
//     never sees it, so it is never lost either);
//   - the commit itself failed: every record failed (it may or may not be
//     committed, which is what failed means to the validator).
//
// Each record carries wire.TxnHeaderKey (its transaction and its size), so
// the validator can count transactions that arrive torn.

// txnTimeout is the broker's transaction timeout: a loadgen that dies
// mid-transaction has it aborted by the coordinator within this.
const txnTimeout = 10 * time.Second

// txnEndTimeout bounds one Flush + EndTransaction.
const txnEndTimeout = 30 * time.Second

// openTxn is the transaction being written and its records' produce outcomes.
type openTxn struct {
	mu     sync.Mutex
	n      uint64 // the transaction's number (from 0, per loadgen instance)
	header []byte // wire.TxnHeader of n
	recs   []txnRec
}

type txnRec struct {
	ti     int
	stream uint32
	seq    uint64
	size   int
	err    error
}

// completeInTxn keeps a record's produce outcome for its transaction's end.
// A promise that comes after its transaction ended (the flush timed out)
// belongs to a transaction that was aborted for it.
func (p *producer) completeInTxn(r txnRec) {
	if t := p.txn.Load(); t != nil {
		t.mu.Lock()
		t.recs = append(t.recs, r)
		t.mu.Unlock()
	} else {
		p.settle([]txnRec{r}, outcomeAborted)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// txnOpts are the client options of the transactional load: a transactional
// id per loadgen instance (the epoch), so two instances never fence each
// other.
func txnOpts(cfg Config) []kgo.Opt {
	if cfg.Transactions == nil {
		return nil
	}
	return []kgo.Opt{
		kgo.TransactionalID(fmt.Sprintf("kmt-loadgen-%s-%d", cfg.RunID, cfg.Epoch)),
		kgo.TransactionTimeout(txnTimeout),
	}
}

// produceTxns writes transactions one after the other on the rate's
// schedule (transaction k is due at k*Size/Rate seconds) until Count records
// or Duration, or ctx ends, or the producer can no longer write transactions.
func (p *producer) produceTxns(ctx context.Context) Stats {
	tc := *p.cfg.Transactions
	start := time.Now()
	p.cfg.Ledger.MarkStart(start)
	var st Stats
	for n := uint64(0); ctx.Err() == nil; n++ {
		size := uint64(tc.Size)
		if c := uint64(p.cfg.Count); c > 0 {
			if p.sent.Load() >= c {
				break
			}
			size = min(size, c-p.sent.Load())
		}
		if p.cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(n*uint64(tc.Size)) / p.cfg.Rate * float64(time.Second)))
			if !sleepUntil(ctx, due) {
				break
			}
		}
		if p.cfg.Duration > 0 && time.Since(start) >= p.cfg.Duration {
			break
		}
		abort := tc.Aborted(n)
		if err := p.oneTxn(n, int(size), abort); err != nil {
			p.log.Error("transactional load stopped: the producer cannot write transactions any more", "transaction", n, "err", err)
			break
		}
		st.Transactions++
		if abort {
			st.AbortedTransactions++
		}
		if p.cfg.Progress != nil {
			p.cfg.Progress(Stats{Sent: p.sent.Load(), Acked: p.acked.Load(), Failed: p.failed.Load(), Aborted: p.aborted.Load(),
				Elapsed: time.Since(start), Epoch: p.cfg.Epoch, Transactions: st.Transactions, AbortedTransactions: st.AbortedTransactions})
		}
	}
	st.Sent, st.Elapsed, st.Epoch = p.sent.Load(), time.Since(start), p.cfg.Epoch
	return st
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// oneTxn writes transaction n of size records and ends it (aborts it when
// abort, or when one of its records failed), then records every record's
// outcome. An error means the client is unusable for transactions.
func (p *producer) oneTxn(n uint64, size int, abort bool) error {
	if err := p.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction %d: %w", n, err)
	}
	t := &openTxn{n: n, header: wire.TxnHeader(p.cfg.Epoch, n, size)}
	p.txn.Store(t)
	p.send(size)
	ctx, cancel := context.WithTimeout(context.Background(), txnEndTimeout)
	defer cancel()
	flushErr := p.cl.Flush(ctx)
	t.mu.Lock()
	recs := t.recs
	t.mu.Unlock()
	for _, r := range recs {
		if r.err != nil && flushErr == nil { // kgo fails a transaction's later records after one failed
			flushErr = r.err
		}
	}
	commit := !abort && flushErr == nil && len(recs) == size
	try := kgo.TryAbort
	if commit {
		try = kgo.TryCommit
	}
	endErr := p.cl.EndTransaction(ctx, try)
	p.txn.Store(nil)
	switch {
	case commit && endErr == nil:
		p.settle(recs, outcomeAcked)
	case commit:
		p.settle(recs, outcomeFailed) // the commit's fate is unknown
	default:
		p.settle(recs, outcomeAborted)
	}
	if flushErr != nil && !abort {
		p.logSendError(fmt.Errorf("transaction %d aborted because a record failed: %w", n, flushErr))
	}
	if endErr != nil {
		return fmt.Errorf("end transaction %d (commit %v): %w", n, commit, endErr)
	}
	if len(recs) != size {
		return errors.New("the producer did not answer every record of the transaction")
	}
	return nil
}

type outcome int

const (
	outcomeAcked outcome = iota
	outcomeFailed
	outcomeAborted
)

// settle records the outcome of a transaction's records in the ledger and
// the counters.
func (p *producer) settle(recs []txnRec, o outcome) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if p.closed {
		return
	}
	for _, r := range recs {
		k := ledger.StreamKey{Topic: p.cfg.Topics[r.ti], Stream: r.stream, Epoch: p.cfg.Epoch}
		switch o {
		case outcomeAcked:
			p.cfg.Ledger.Ack(k, r.seq)
			p.acked.Add(1)
			p.m[r.ti].acked.Inc()
			p.m[r.ti].bytes.Add(float64(r.size))
		case outcomeFailed:
			p.cfg.Ledger.Fail(k, r.seq)
			p.failed.Add(1)
			p.m[r.ti].failed.Inc()
		case outcomeAborted:
			p.cfg.Ledger.Abort(k, r.seq)
			p.aborted.Add(1)
		}
	}
}
