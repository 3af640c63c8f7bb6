package scenarios

// The embedded setup runs both clusters, the mirror, the load and the
// validator in one process. Beyond these limits it cannot start or keep up on
// a 2-core machine, and the run would blame the mirror for kmt's own limits,
// so lint and `kmt run` refuse them for the local backend (real clusters have
// no such limit). Measured on the 2-core CI machine, busy with other work
// (see the load engineer's closing note for the runs):
//   - partitions (all topics): 200 started and delivered every record; 300
//     delivered 321 of 9963 records before the drain deadline; 500 could not
//     produce (every record timed out); 1000 could not start (the mirror's
//     connections timed out).
//   - rate (baseline, 6 partitions, 256-byte records): at 20000, 30000 and
//     40000 records/s every record was delivered (the latency was the
//     machine's, and kmt's harness check said so); at 50000 the loadgen fell
//     behind (38222/s) and 2% of the records arrived before the drain
//     deadline; at 100000 the loadgen reached 85000/s.
const (
	MaxLocalPartitions = 200
	MaxLocalRate       = 40000
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
