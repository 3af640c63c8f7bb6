package main

import (
	"os"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

// kafkaSecurity resolves the --kafka-* flags and the KMT_KAFKA_* variables
// the charts set (kafkaclient.Flags) into TLS and SASL settings; a bad
// setting is a usage error (exit 2) before anything connects.
func kafkaSecurity(kf kafkaclient.Flags) (kafkaclient.Security, error) {
	s, err := kf.Security(os.Getenv)
	if err != nil {
		return s, runner.Usage(err)
	}
	return s, nil
}
