package kafkaclient

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Environment variables the charts set for the in-cluster workloads. A flag
// given on the command line wins over its variable.
const (
	// EnvTLSDir is a mounted TLS Secret in Strimzi's layout: ca.crt (the
	// cluster CA) and, for mutual TLS, user.crt + user.key.
	EnvTLSDir        = "KMT_KAFKA_TLS_DIR"
	EnvSASLMechanism = "KMT_KAFKA_SASL_MECHANISM"
	EnvSASLUsername  = "KMT_KAFKA_SASL_USERNAME"
	EnvSASLPassword  = "KMT_KAFKA_SASL_PASSWORD"
)

// Flags are the security flags every command that talks to Kafka shares.
type Flags struct {
	TLS              bool
	TLSDir           string
	CAFile           string
	CertFile         string
	KeyFile          string
	Insecure         bool
	SASLMechanism    string
	SASLUsername     string
	SASLPasswordFile string
}

// Register adds the flags to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.TLS, "kafka-tls", false, "speak TLS to the brokers (system CA roots unless --kafka-tls-ca)")
	fs.StringVar(&f.TLSDir, "kafka-tls-dir", "", "a folder in Strimzi's Secret layout: ca.crt and, for mutual TLS, user.crt + user.key (env "+EnvTLSDir+")")
	fs.StringVar(&f.CAFile, "kafka-tls-ca", "", "PEM file of the CA that signed the brokers' certificates")
	fs.StringVar(&f.CertFile, "kafka-tls-cert", "", "PEM client certificate for mutual TLS (with --kafka-tls-key)")
	fs.StringVar(&f.KeyFile, "kafka-tls-key", "", "PEM client key for mutual TLS")
	fs.BoolVar(&f.Insecure, "kafka-tls-insecure", false, "do not verify the brokers' certificates (test clusters only)")
	fs.StringVar(&f.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: "+strings.Join(Mechanisms, ", ")+" (env "+EnvSASLMechanism+")")
	fs.StringVar(&f.SASLUsername, "kafka-sasl-username", "", "SASL username (env "+EnvSASLUsername+")")
	fs.StringVar(&f.SASLPasswordFile, "kafka-sasl-password-file", "", "file holding the SASL password (or env "+EnvSASLPassword+"; never on the command line)")
}

// Security resolves the flags, falling back to the environment read by
// getenv (os.Getenv in the commands), and checks the result. Errors name
// the flag or variable at fault.
func (f Flags) Security(getenv func(string) string) (Security, error) {
	var s Security
	tlsDir := firstOf(f.TLSDir, getenv(EnvTLSDir))
	if f.TLS || tlsDir != "" || f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" || f.Insecure {
		t := &TLS{CAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile, Insecure: f.Insecure}
		if tlsDir != "" {
			if err := t.fromDir(tlsDir); err != nil {
				return s, fmt.Errorf("--kafka-tls-dir / %s %s: %w", EnvTLSDir, tlsDir, err)
			}
		}
		s.TLS = t
	}
	mech := firstOf(f.SASLMechanism, getenv(EnvSASLMechanism))
	user := firstOf(f.SASLUsername, getenv(EnvSASLUsername))
	pass := getenv(EnvSASLPassword)
	if f.SASLPasswordFile != "" {
		b, err := os.ReadFile(f.SASLPasswordFile)
		if err != nil {
			return s, fmt.Errorf("--kafka-sasl-password-file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	switch {
	case mech != "":
		s.SASL = &SASL{Mechanism: strings.ToUpper(mech), Username: user, Password: pass}
	case user != "" || pass != "":
		return s, fmt.Errorf("a SASL username or password is set but no mechanism: set --kafka-sasl-mechanism or %s (%s)", EnvSASLMechanism, strings.Join(Mechanisms, ", "))
	}
	if s.SASL != nil {
		if err := s.SASL.validate(); err != nil {
			return s, fmt.Errorf("--kafka-sasl-* / %s_*: %w", strings.TrimSuffix(EnvSASLMechanism, "_MECHANISM"), err)
		}
	}
	if s.TLS != nil {
		if _, err := s.TLS.config(); err != nil {
			return s, fmt.Errorf("--kafka-tls-*: %w", err)
		}
	}
	return s, nil
}

// fromDir fills what t does not set yet from a Strimzi-layout folder.
func (t *TLS) fromDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return errors.New("not a folder")
	}
	if ca := filepath.Join(dir, "ca.crt"); t.CAFile == "" && exists(ca) {
		t.CAFile = ca
	}
	if crt := filepath.Join(dir, "user.crt"); t.CertFile == "" && exists(crt) {
		t.CertFile, t.KeyFile = crt, filepath.Join(dir, "user.key")
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
