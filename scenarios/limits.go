package scenarios

// The embedded setup runs both clusters, the mirror, the load and the
// validator in one process. Beyond these limits it cannot start or keep up on
// a 2-core machine, and the run would blame the mirror for kmt's own limits,
// so lint and `kmt run` refuse them for the local backend (real clusters have
// no such limit). Measured on 2-core machines:
//   - partitions (all topics): 200 started and delivered every record; 300
//     delivered 321 of 9963 records before the drain deadline; 500 could not
//     produce (every record timed out); 1000 could not start (the mirror's
//     connections timed out).
//   - rate (baseline, 6 partitions, 256-byte records), since the loadgen's
//     record encoder and the reference mirror's franz-go reads and
//     pipelined writes (issue 15): with both cores 200000 records/s passed
//     (p99 62 ms); with the process pinned to one core, 60000, 80000 and
//     100000 passed (p99 28, 30, 48 ms); beside two busy loops, which left
//     it about one core, 100000 passed (p99 136 and 212 ms) and 150000
//     failed (p99 4.9 s, the mirror behind). So 100000 is what it sustains
//     with one core to itself. (Before those changes the limit was 40000:
//     at 50000 the loadgen fell behind.)
const (
	MaxLocalPartitions = 200
	MaxLocalRate       = 100000
)

// localLimits refuses what the embedded setup cannot run.
func (s *Scenario) localLimits(b Backend) Errors {
	if b != BackendLocal {
		return nil
	}
	var es Errors
	total := 0
	for _, t := range s.Spec.Topology.Topics {
		total += t.Partitions
	}
	if total > MaxLocalPartitions {
		es = append(es, s.errAt("spec.topology.topics", "%d partitions in all: the embedded setup cannot run more than %d on one machine (kmt would be the bottleneck, not the mirror); use fewer, or run on real clusters (--source-bootstrap/--target-bootstrap, or Kubernetes)", total, MaxLocalPartitions))
	}
	if r := s.Spec.Load.Rate; r > MaxLocalRate {
		es = append(es, s.errAt("spec.load.rate", "%g records/s: the embedded setup sustains at most %d (kmt would be the bottleneck, not the mirror); lower it, or run on real clusters", r, MaxLocalRate))
	}
	return es
}
