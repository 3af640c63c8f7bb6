// Package e2e proves, on the embedded setup, that every local fault really
// takes effect, as measured by the validator and not assumed: WAN latency
// raises the measured mirror latency by the added delay, a WAN partition
// stops arrivals at the target, a bandwidth cap holds target throughput near
// the cap, a hard mirror kill loses records only when the mirror commits
// before it produces, a source broker kill moves leaders without loss, and a
// kcat pipe mirror (a real third-party client) is judged consistently with
// an independent kcat consumer of the target.
//
// The tests run whole scenarios (testdata/*.yaml) through runner.Run, so they
// take minutes; they are skipped under -short. At most two scenarios run at
// once (the CI machine has two cores).
package e2e
