package main

import (
	"context"
	"fmt"
	"net"
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

// kafkaDial is how clients that take only a dial function (the fault
// agent's) reach Kafka: TLS from the --kafka-*/KMT_KAFKA_* settings, nil for
// plain TCP. SASL needs a whole client (internal/kafkaclient) and is an
// error here until those clients take one.
func kafkaDial(kf kafkaclient.Flags) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	s, err := kafkaSecurity(kf)
	if err != nil {
		return nil, err
	}
	if s.SASL != nil {
		return nil, runner.Usage(fmt.Errorf("SASL (%s) is not supported by this command yet; use TLS client certificates (kafka.tls.secretName) for it", s.SASL.Mechanism))
	}
	if s.TLS == nil {
		return nil, nil
	}
	dial, err := kafkaclient.Config{Security: s}.DialFunc()
	if err != nil {
		return nil, runner.Usage(err)
	}
	return dial, nil
}
