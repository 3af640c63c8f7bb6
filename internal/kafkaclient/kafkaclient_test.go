package kafkaclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pki is a throw-away CA with a server certificate for 127.0.0.1 and a
// client certificate, written as PEM files.
type pki struct {
	dir                   string
	caFile                string
	server                tls.Certificate
	clientCert, clientKey string
	pool                  *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kmt test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &pki{dir: dir, caFile: filepath.Join(dir, "ca.crt"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "kmt"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	sDER, sKey := leaf(2, x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKey := leaf(3, x509.ExtKeyUsageClientAuth)
	p.clientCert, p.clientKey = filepath.Join(dir, "user.crt"), filepath.Join(dir, "user.key")
	writePEM(t, p.clientCert, "CERTIFICATE", cDER)
	kb, _ := x509.MarshalECPrivateKey(cKey)
	writePEM(t, p.clientKey, "EC PRIVATE KEY", kb)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// broker starts a kfake cluster speaking TLS (client certs required when
// mtls) and SASL with one user for mech.
func broker(t *testing.T, p *pki, mtls bool, mech string) []string {
	t.Helper()
	srv := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mtls {
		srv.ClientAuth, srv.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.TLS(srv), kfake.SeedTopics(2, "t")}
	if mech != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(mech, "kmt", "s3cret"))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// roundTrip writes n records with a kafka-go Writer over Transport(), then
// reads them back with a kafka-go Reader over Dialer() and with franz-go
// over KgoOpts(); it returns how many each reader got.
func roundTrip(t *testing.T, cfg Config, n int) (kafkaGo, franz int, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := cfg.Transport()
	if err != nil {
		return 0, 0, err
	}
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: "t", Transport: tr, RequiredAcks: kafka.RequireAll, MaxAttempts: 1}
	defer w.Close()
	for i := range n {
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte{byte(i)}, Value: []byte(fmt.Sprint(i))}); err != nil {
			return 0, 0, fmt.Errorf("kafka-go write: %w", err)
		}
	}
	d, err := cfg.Dialer()
	if err != nil {
		return 0, 0, err
	}
	for p := range 2 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: "t", Partition: p, Dialer: d, MaxWait: 100 * time.Millisecond})
		last, err := d.DialLeader(ctx, "tcp", cfg.Brokers[0], "t", p)
		if err != nil {
			r.Close()
			return 0, 0, fmt.Errorf("kafka-go dial leader: %w", err)
		}
		end, _ := last.ReadLastOffset()
		last.Close()
		for range end {
			if _, err := r.ReadMessage(ctx); err != nil {
				r.Close()
				return 0, 0, fmt.Errorf("kafka-go read: %w", err)
			}
			kafkaGo++
		}
		r.Close()
	}
	cl, err := cfg.NewKgo(kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return kafkaGo, 0, err
	}
	defer cl.Close()
	for franz < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return kafkaGo, franz, fmt.Errorf("franz-go poll: %w", err)
		}
		franz += fs.NumRecords()
	}
	return kafkaGo, franz, nil
}

// Every SASL mechanism over TLS works for both client libraries, from one
// Config; the same Config with a wrong password fails for both.
func TestSASLOverTLSBothLibraries(t *testing.T) {
	p := newPKI(t)
	for _, mech := range Mechanisms {
		t.Run(mech, func(t *testing.T) {
			addrs := broker(t, p, false, mech)
			cfg := Config{Brokers: addrs, ClientID: "kmt-test", DialTimeout: 5 * time.Second,
				Security: Security{TLS: &TLS{CAFile: p.caFile}, SASL: &SASL{Mechanism: mech, Username: "kmt", Password: "s3cret"}}}
			kg, fr, err := roundTrip(t, cfg, 7)
			if err != nil || kg != 7 || fr != 7 {
				t.Fatalf("round trip: kafka-go read %d, franz-go read %d, err %v; want 7 and 7", kg, fr, err)
			}
			bad := cfg
			bad.SASL = &SASL{Mechanism: mech, Username: "kmt", Password: "wrong"}
			if _, _, err := roundTrip(t, bad, 1); err == nil {
				t.Fatal("a wrong password was accepted")
			}
		})
	}
}

// Mutual TLS: without the client certificate the broker refuses; with it
// (from a Strimzi-layout folder, through Flags) both libraries work. A CA
// that did not sign the broker is refused unless verification is off.
func TestMutualTLSAndVerification(t *testing.T) {
	p := newPKI(t)
	addrs := broker(t, p, true, "")
	noCert := Config{Brokers: addrs, DialTimeout: 3 * time.Second, Security: Security{TLS: &TLS{CAFile: p.caFile}}}
	if _, _, err := roundTrip(t, noCert, 1); err == nil {
		t.Fatal("a client without certificate got through a broker that requires one")
	}
	sec, err := Flags{}.Security(env(map[string]string{EnvTLSDir: p.dir}))
	if err != nil {
		t.Fatal(err)
	}
	if sec.TLS.CertFile != p.clientCert || sec.TLS.CAFile != p.caFile {
		t.Fatalf("TLS from %s: %+v", EnvTLSDir, sec.TLS)
	}
	if kg, fr, err := roundTrip(t, Config{Brokers: addrs, Security: sec}, 3); err != nil || kg != 3 || fr != 3 {
		t.Fatalf("mutual TLS: kafka-go %d, franz-go %d, err %v; want 3 and 3", kg, fr, err)
	}

	other := newPKI(t) // a CA that did not sign the broker's certificate
	wrongCA := Config{Brokers: addrs, DialTimeout: 3 * time.Second, Security: Security{TLS: &TLS{CAFile: other.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}}}
	dial, _ := wrongCA.DialFunc()
	if _, err := dial(context.Background(), "tcp", addrs[0]); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("dial with the wrong CA: %v, want a certificate error", err)
	}
	wrongCA.TLS.Insecure = true
	if kg, _, err := roundTrip(t, wrongCA, 1); err != nil || kg != 3+1 { // the 3 of the mTLS round trip, and this one
		t.Fatalf("--kafka-tls-insecure: read %d, err %v", kg, err)
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Flags and the charts' environment resolve to one Security; every
// incomplete or unknown setting is an error naming it.
func TestFlagsAndEnvironment(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("fromfile\n"), 0o600)
	cases := []struct {
		name    string
		flags   Flags
		env     map[string]string
		want    *SASL
		tls     bool
		wantErr string
	}{
		{name: "nothing is plaintext"},
		{name: "charts' SASL env", env: map[string]string{EnvSASLMechanism: "scram-sha-512", EnvSASLUsername: "u", EnvSASLPassword: "p"},
			want: &SASL{Mechanism: ScramSHA512, Username: "u", Password: "p"}},
		{name: "flags win over env", flags: Flags{SASLMechanism: "PLAIN", SASLUsername: "f", SASLPasswordFile: pw},
			env:  map[string]string{EnvSASLMechanism: ScramSHA256, EnvSASLUsername: "u", EnvSASLPassword: "p"},
			want: &SASL{Mechanism: Plain, Username: "f", Password: "fromfile"}},
		{name: "unknown mechanism", env: map[string]string{EnvSASLMechanism: "GSSAPI", EnvSASLUsername: "u", EnvSASLPassword: "p"}, wantErr: `SASL mechanism "GSSAPI": use one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{name: "no password", env: map[string]string{EnvSASLMechanism: Plain, EnvSASLUsername: "u"}, wantErr: "needs a username and a password"},
		{name: "credentials without mechanism", env: map[string]string{EnvSASLUsername: "u", EnvSASLPassword: "p"}, wantErr: "no mechanism: set --kafka-sasl-mechanism or KMT_KAFKA_SASL_MECHANISM"},
		{name: "missing password file", flags: Flags{SASLMechanism: Plain, SASLUsername: "u", SASLPasswordFile: "/nonexistent/pw"}, wantErr: "--kafka-sasl-password-file"},
		{name: "tls on", flags: Flags{TLS: true}, tls: true},
		{name: "missing CA", flags: Flags{CAFile: "/nonexistent/ca.crt"}, wantErr: "--kafka-tls-*: TLS CA"},
		{name: "cert without key", flags: Flags{CertFile: pw}, wantErr: "give both or neither"},
		{name: "tls dir is a file", env: map[string]string{EnvTLSDir: pw}, wantErr: "KMT_KAFKA_TLS_DIR " + pw + ": not a folder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.flags.Security(env(c.env))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want it to say %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (s.TLS != nil) != c.tls {
				t.Errorf("TLS %+v, want on=%v", s.TLS, c.tls)
			}
			if (s.SASL == nil) != (c.want == nil) || (s.SASL != nil && *s.SASL != *c.want) {
				t.Errorf("SASL %+v, want %+v", s.SASL, c.want)
			}
		})
	}
}
