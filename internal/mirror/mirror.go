// Package mirror runs the thing under test: a cross-cluster mirror between a
// source and a target Kafka cluster. Two kinds sit behind one Controller so
// the fault timeline can restart, kill or freeze either the same way:
//
//   - Reference: an in-process MirrorMaker-like mirror on franz-go, with
//     opt-in defects that prove the checker catches what it claims to;
//   - Process: any user-supplied command (MirrorMaker 2, a kcat pipe, ...)
//     run as a child process group and controlled with signals.
package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Controller is what the fault timeline drives.
type Controller interface {
	Start(ctx context.Context) error // (re)start; after Kill or Stop too
	Stop(ctx context.Context) error  // graceful: finish in-flight, commit, exit
	Kill() error                     // hard: no final commit, in-flight lost
	Pause() error                    // freeze: no progress, connections kept
	Resume() error
	Close() error // stop for good, release everything
}

// TopicMap names a source topic and the target topic it is copied to.
type TopicMap struct{ Source, Target string }

// Config configures the reference mirror.
type Config struct {
	SourceBootstrap string // advertised (through the WAN); comma-separated
	TargetBootstrap string // comma-separated
	Topics          []TopicMap
	// Later are topics that appear on the source mid-run (the mirror's
	// topic pattern matches them): the reference mirror creates each on the
	// target, with the source's partitions and configs, when it appears.
	Later   []TopicMap
	Group   string // consumer group on the source; default "kmt-mirror"
	Defects []scenarios.Defect
	// Checkpoints turns on consumer-group offset translation
	// (reference_checkpoints.go); reference mirror only.
	Checkpoints *Checkpoints
	// Transactional: the reference mirror writes every batch to the target
	// in one transaction (reference_defects.go writeTxn), as MirrorMaker 2
	// does with exactly-once source support; the mirror reads the source
	// read_committed (reference_source.go). A downstream read_committed reader
	// then never sees part of a batch. It is not exactly-once across a kill:
	// the source offsets are committed after the target transaction (on
	// the source cluster, outside it), so a kill between the two copies the
	// batch again on restart.
	Transactional bool
	Registerer    prometheus.Registerer // optional
	Logger        *slog.Logger          // optional
}

// DefaultGroup is the source consumer group when Config.Group is empty.
const DefaultGroup = "kmt-mirror"

// defects is the parsed, validated form of Config.Defects. An N of 0 means
// the defect is off.
type defects struct {
	drop, duplicate, reorder, corrupt      int
	keyDamage, topicSwap, keyScatter       int
	headerDamage, txnAbort, txnAbortResend int
	rehash, partitionStall                 int
	dropHeaders, rewriteTimestamp          int
	checkpointAhead, checkpointRewind      int // offsets, not periods
	commitBeforeProduce, noTopicSync       bool
	copyAborted, dropTombstones            bool
}

// flags maps each defect that takes no N to its field.
func (d *defects) flags() map[string]*bool {
	return map[string]*bool{scenarios.DefectCommitBeforeProduce: &d.commitBeforeProduce,
		scenarios.DefectCopyAborted: &d.copyAborted, scenarios.DefectDropTombstones: &d.dropTombstones}
}

// slots maps each every-N defect name to its field.
func (d *defects) slots() map[string]*int {
	return map[string]*int{
		scenarios.DefectDrop: &d.drop, scenarios.DefectDuplicate: &d.duplicate, scenarios.DefectReorder: &d.reorder,
		scenarios.DefectCorrupt: &d.corrupt, scenarios.DefectKeyDamage: &d.keyDamage, scenarios.DefectTopicSwap: &d.topicSwap,
		scenarios.DefectKeyScatter: &d.keyScatter, scenarios.DefectHeaderDamage: &d.headerDamage,
		scenarios.DefectTxnAbort: &d.txnAbort, scenarios.DefectTxnAbortResend: &d.txnAbortResend, scenarios.DefectRehash: &d.rehash,
		scenarios.DefectDropHeaders: &d.dropHeaders, scenarios.DefectRewriteTimestamp: &d.rewriteTimestamp,
		scenarios.DefectPartitionStall:  &d.partitionStall,
		scenarios.DefectCheckpointAhead: &d.checkpointAhead, scenarios.DefectCheckpointRewind: &d.checkpointRewind,
	}
}

func (d defects) any() bool { return d.String() != "" }

// transactional: the mirror writes through a transactional producer.
func (d defects) transactional() bool { return d.txnAbort > 0 || d.txnAbortResend > 0 }

func (d defects) String() string {
	var p []string
	slots := d.slots()
	for _, name := range scenarios.EveryDefects {
		if n := *slots[name]; n > 0 {
			p = append(p, fmt.Sprintf("%s every %d", name, n))
		}
	}
	for _, name := range []string{scenarios.DefectCommitBeforeProduce, scenarios.DefectCopyAborted, scenarios.DefectDropTombstones} {
		if *d.flags()[name] {
			p = append(p, name)
		}
	}
	if d.noTopicSync {
		p = append(p, scenarios.DefectNoTopicSync)
	}
	return strings.Join(p, ", ")
}

func parseDefects(in []scenarios.Defect) (defects, error) {
	var d defects
	slots := d.slots()
	for i, x := range in {
		if flag := d.flags()[x.Name]; flag != nil {
			*flag = true
			continue
		}
		if x.Name == scenarios.DefectNoTopicSync {
			d.noTopicSync = true
			continue
		}
		slot := slots[x.Name]
		if slot == nil {
			return d, fmt.Errorf("mirror defect %d: unknown name %q (want one of %s)", i, x.Name, scenarios.DefectNames())
		}
		if x.Every < 2 {
			return d, fmt.Errorf("mirror defect %d (%s): every must be >= 2, got %d", i, x.Name, x.Every)
		}
		*slot = x.Every
	}
	if d.txnAbort > 0 && d.txnAbortResend > 0 {
		return d, fmt.Errorf("mirror defects %s and %s exclude each other", scenarios.DefectTxnAbort, scenarios.DefectTxnAbortResend)
	}
	return d, nil
}

// Both kinds are driven through the same interface.
var (
	_ Controller = (*Reference)(nil)
	_ Controller = (*Process)(nil)
)
