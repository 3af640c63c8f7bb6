package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/logscan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// ErrRunIDInUse: the run id already has records or ledger entries. A reused
// run id makes the validator judge two runs as one (the old run's records
// look like duplicates, its ledger like this run's), so kmt refuses it
// before producing anything (exit 2). Use errors.Is.
var ErrRunIDInUse = errors.New("run id already in use")

// RunIDInUseError says where the run id was found.
type RunIDInUseError struct {
	RunID string
	Where string // e.g. `topic "orders" on source.example:9092`
}

func (e *RunIDInUseError) Error() string {
	return fmt.Sprintf("run id %q already has records in %s: a reused run id would judge two runs as one; pick another (--run-id, or leave it out for a fresh one)", e.RunID, e.Where)
}

func (e *RunIDInUseError) Unwrap() error { return ErrRunIDInUse }

// TailRecords is how many of the newest records of each partition the check
// reads: a reused run id's records are normally the newest. A run id whose
// records were followed by more than this many records of other runs on
// every partition is not found in the topics (the ledger topic, of which the
// newest 200000 entries per partition are read, still finds any recent run
// that published a ledger; see ledger.RunExists).
const TailRecords = 1000

// checkTimeout bounds the whole check.
const checkTimeout = 30 * time.Second

// RunIDCheck says where to look for a run id.
type RunIDCheck struct {
	Bootstrap   string
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	Security    kafkaclient.Security
	Topics      []string // topics whose newest records are read (source or target)
	LedgerTopic string   // its newest entries are read when set (ledger.RunExistsWith)
	RunID       string
}

// CheckRunID returns a *RunIDInUseError (errors.Is ErrRunIDInUse) when the
// ledger topic (its newest entries) holds an entry of the run or the newest TailRecords records
// of any partition of Topics include a kmt record of the run (a damaged one
// too, if its run id is readable). Missing topics hold nothing.
func CheckRunID(ctx context.Context, c RunIDCheck) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if c.LedgerTopic != "" {
		found, err := ledger.RunExistsWith(ctx, kafkaclient.Config{Brokers: bootstrap.Split(c.Bootstrap), Dial: c.Dial, Security: c.Security}, c.LedgerTopic, c.RunID)
		if err != nil {
			return fmt.Errorf("loadgen: checking that run id %q is unused: %w", c.RunID, err)
		}
		if found {
			return &RunIDInUseError{RunID: c.RunID, Where: fmt.Sprintf("ledger topic %q on %s", c.LedgerTopic, c.Bootstrap)}
		}
	}
	if len(c.Topics) == 0 {
		return nil
	}
	var where string
	_, err := logscan.Scan(ctx, logscan.Options{
		Brokers: bootstrap.Split(c.Bootstrap), Dial: logscan.DialFunc(c.Dial), Security: c.Security, Topics: c.Topics, Tail: TailRecords, ClientID: "kmt-runid-check",
	}, func(r *kgo.Record) bool {
		if recordRunID(r.Value) == c.RunID {
			where = fmt.Sprintf("topic %q (partition %d, offset %d) on %s", r.Topic, r.Partition, r.Offset, c.Bootstrap)
			return false
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("loadgen: checking that run id %q is unused in %s on %s: %w", c.RunID, strings.Join(c.Topics, ","), c.Bootstrap, err)
	}
	if where != "" {
		return &RunIDInUseError{RunID: c.RunID, Where: where}
	}
	return nil
}

// recordRunID is the run id a record value carries ("" for a foreign one).
func recordRunID(v []byte) string {
	rec, err := wire.Decode(v)
	if err == nil {
		return rec.RunID
	}
	var de *wire.DecodeError
	if errors.As(err, &de) {
		if de.Partial.RunID != "" {
			return de.Partial.RunID
		}
		return de.RunToken
	}
	return ""
}
