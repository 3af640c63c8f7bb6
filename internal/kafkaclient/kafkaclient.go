// Package kafkaclient builds every Kafka client kmt uses from one Config:
// segmentio/kafka-go Transports and Dialers and twmb/franz-go kgo options,
// with the same brokers, dial function, TLS and SASL. One place knows how
// kmt reaches a secured cluster, so a TLS or SASL setting cannot work for
// the load generator and silently not for the validator.
package kafkaclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
	kgsasl "github.com/segmentio/kafka-go/sasl"
	kgplain "github.com/segmentio/kafka-go/sasl/plain"
	kgscram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kgo"
	fsasl "github.com/twmb/franz-go/pkg/sasl"
	fplain "github.com/twmb/franz-go/pkg/sasl/plain"
	fscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

// DialFunc opens a TCP connection to a broker address.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// SASL mechanisms kmt speaks.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms lists the SASL mechanisms, for help and errors.
var Mechanisms = []string{Plain, ScramSHA256, ScramSHA512}

// TLS says how to speak TLS to every broker.
type TLS struct {
	CAFile   string // PEM CA bundle; empty: the system roots
	CertFile string // client certificate (mutual TLS), with KeyFile
	KeyFile  string
	// Insecure skips verifying the brokers' certificates (test clusters only).
	Insecure bool
}

// SASL is one user's credentials.
type SASL struct {
	Mechanism string // Plain, ScramSHA256 or ScramSHA512
	Username  string
	Password  string
}

// Security is how kmt authenticates and encrypts; the zero value is
// plaintext without authentication.
type Security struct {
	TLS  *TLS
	SASL *SASL
}

// Config is one cluster as a client reaches it.
type Config struct {
	Brokers  []string
	ClientID string
	// Dial reaches a broker's address over TCP (the embedded clusters'
	// DirectDial, say); nil: a plain net.Dialer. TLS goes on top of it.
	Dial        DialFunc
	DialTimeout time.Duration // default 10s
	Security
}

// Validate says what is wrong with the security settings, naming the
// setting, before any connection is tried.
func (s Security) Validate() error {
	if s.SASL != nil {
		if err := s.SASL.validate(); err != nil {
			return err
		}
	}
	if s.TLS != nil {
		if _, err := s.TLS.config(); err != nil {
			return err
		}
	}
	return nil
}

func (s *SASL) validate() error {
	switch strings.ToUpper(s.Mechanism) {
	case Plain, ScramSHA256, ScramSHA512:
	default:
		return fmt.Errorf("SASL mechanism %q: use one of %s", s.Mechanism, strings.Join(Mechanisms, ", "))
	}
	if s.Username == "" || s.Password == "" {
		return fmt.Errorf("SASL %s needs a username and a password", s.Mechanism)
	}
	return nil
}

// config builds the crypto/tls configuration (without ServerName, which
// is set per broker).
func (t *TLS) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.Insecure} //nolint:gosec // opt-in, for test clusters
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, fmt.Errorf("TLS client certificate %q and key %q: give both or neither", t.CertFile, t.KeyFile)
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %q with key %q: %w (both must be PEM files, and the key must belong to the certificate)", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// DialFunc returns how to open a connection to a broker: c.Dial (or TCP),
// wrapped in TLS when c.TLS is set, with the broker's host as server name.
func (c Config) DialFunc() (DialFunc, error) {
	dial := c.Dial
	if dial == nil {
		timeout := c.DialTimeout
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		dial = (&net.Dialer{Timeout: timeout}).DialContext
	}
	if c.TLS == nil {
		return dial, nil
	}
	base, err := c.TLS.config()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := base.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
		conn := tls.Client(raw, cfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return conn, nil
	}, nil
}

// Transport is a kafka-go Transport for Writers and admin requests. The
// caller may still set Context, MetadataTTL and the like on it.
func (c Config) Transport() (*kafka.Transport, error) {
	dial, mech, err := c.kafkaGoParts()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{Dial: dial, DialTimeout: c.timeout(), ClientID: c.ClientID, SASL: mech}, nil
}

// Dialer is a kafka-go Dialer for Readers and Conns.
func (c Config) Dialer() (*kafka.Dialer, error) {
	dial, mech, err := c.kafkaGoParts()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{DialFunc: dial, Timeout: c.timeout(), ClientID: c.ClientID, SASLMechanism: mech}, nil
}

// kafkaGoParts is what kafka-go's Transport and Dialer both need: the dial
// function (TLS included) and the SASL mechanism.
func (c Config) kafkaGoParts() (DialFunc, kgsasl.Mechanism, error) {
	dial, err := c.DialFunc()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.kafkaGoSASL()
	if err != nil {
		return nil, nil, err
	}
	return dial, mech, nil
}

// KgoOpts are the franz-go options for c: seed brokers, dialer, SASL and
// client id. Append the client's own options after them.
func (c Config) KgoOpts() ([]kgo.Opt, error) {
	dial, err := c.DialFunc()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.Dialer(dial), kgo.DialTimeout(c.timeout())}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	mech, err := c.franzSASL()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// NewKgo is a franz-go client for c with extra options.
func (c Config) NewKgo(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.KgoOpts()
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(opts, extra...)...)
}

func (c Config) timeout() time.Duration {
	if c.DialTimeout == 0 {
		return 10 * time.Second
	}
	return c.DialTimeout
}

func (c Config) kafkaGoSASL() (kgsasl.Mechanism, error) {
	s := c.SASL
	if s == nil {
		return nil, nil
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	switch strings.ToUpper(s.Mechanism) {
	case Plain:
		return kgplain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case ScramSHA256:
		return kgscram.Mechanism(kgscram.SHA256, s.Username, s.Password)
	default:
		return kgscram.Mechanism(kgscram.SHA512, s.Username, s.Password)
	}
}

func (c Config) franzSASL() (fsasl.Mechanism, error) {
	s := c.SASL
	if s == nil {
		return nil, nil
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	switch strings.ToUpper(s.Mechanism) {
	case Plain:
		return fplain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case ScramSHA256:
		return fscram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	default:
		return fscram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	}
}
