package kube

import (
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// The validator's time budget in a cluster run, shared by `kmt validate`
// (which spends it) and the charts (whose Job deadlines must exceed it, or
// a Job is killed before it writes its report).
const (
	// LoadWaitSlack is added to the load duration for how long the
	// validator waits for the ledger's done entry.
	LoadWaitSlack = 10 * time.Minute
	// ScrapeSettle is waited after the drain so Prometheus scrapes the
	// final values before the assertions are evaluated.
	ScrapeSettle = 35 * time.Second
	// AssertionTimeout bounds the evaluation of all assertions.
	AssertionTimeout = 5 * time.Minute
	// FaultRecordsWait bounds how long the validator waits, after the
	// drain, for the fault agents' final records.
	FaultRecordsWait = 2 * time.Minute
	// StartupSlack covers image pulls and pod scheduling.
	StartupSlack = 5 * time.Minute
)

// LoadWait is how long the validator waits for the load of s to finish.
func LoadWait(s *scenarios.Scenario) time.Duration {
	return s.Spec.Load.Duration.D() + LoadWaitSlack
}

// ValidatorWorstCase is the longest a validator of s runs when the load
// never finishes: the whole load wait, the drain, the fault records, the
// scrape settle and the assertion evaluation.
func ValidatorWorstCase(s *scenarios.Scenario) time.Duration {
	return LoadWait(s) + s.Spec.Drain.D() + FaultRecordsWait + ScrapeSettle + AssertionTimeout
}

// JobDeadline is the activeDeadlineSeconds of the validator and fault
// agent Jobs: the worst case plus startup.
func JobDeadline(s *scenarios.Scenario) time.Duration {
	return ValidatorWorstCase(s) + StartupSlack
}
