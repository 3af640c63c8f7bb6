package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

// kafkaDial returns the dial function the kmt workloads use to reach Kafka,
// from the environment the charts set:
//
//	KMT_KAFKA_TLS_DIR  a mounted TLS Secret: ca.crt (the cluster CA) and,
//	                   for mutual TLS, user.crt + user.key (Strimzi's
//	                   KafkaUser Secret layout); TLS to every broker
//	KMT_KAFKA_SASL_*   SASL credentials: not supported yet, a clear error
//
// nil means plain TCP.
func kafkaDial() (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	if m := os.Getenv("KMT_KAFKA_SASL_MECHANISM"); m != "" {
		return nil, runner.Usage(fmt.Errorf("KMT_KAFKA_SASL_MECHANISM=%s: SASL is not supported by this kmt yet; use TLS client certificates (kafka.tls.secretName) or a listener without SASL", m))
	}
	dir := os.Getenv("KMT_KAFKA_TLS_DIR")
	if dir == "" {
		return nil, nil
	}
	cfg, err := tlsConfig(dir)
	if err != nil {
		return nil, runner.Usage(fmt.Errorf("KMT_KAFKA_TLS_DIR=%s: %w", dir, err))
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c := cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			c.ServerName = host
		}
		dd := *d
		dd.Config = c
		return dd.DialContext(ctx, network, addr)
	}, nil
}

func tlsConfig(dir string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	switch {
	case err == nil:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("ca.crt holds no PEM certificate")
		}
		cfg.RootCAs = pool
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	crt, key := filepath.Join(dir, "user.crt"), filepath.Join(dir, "user.key")
	if _, err := os.Stat(crt); err == nil {
		pair, err := tls.LoadX509KeyPair(crt, key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
