package mirror

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// testPKI is a CA and a server certificate for 127.0.0.1/localhost,
// written as PEM: ca.pem (the truststore) and server.pem (PKCS#8 key and
// certificate in one file, Kafka's ssl.keystore.type=PEM layout).
type testPKI struct{ CAFile, ServerFile string }

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kmt test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{CAFile: filepath.Join(dir, "ca.pem"), ServerFile: filepath.Join(dir, "server.pem")}
	write := func(path string, blocks ...*pem.Block) {
		var b []byte
		for _, x := range blocks {
			b = append(b, pem.EncodeToMemory(x)...)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.CAFile, &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	write(p.ServerFile, &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}, &pem.Block{Type: "CERTIFICATE", Bytes: srvDER})
	return p
}

// Test users: one per mechanism, all with the same password.
const (
	secUser     = "alice"
	secPassword = "alice-secret"
)

// secureBroker is one real Apache Kafka KRaft node whose client listener is
// SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 for user alice; SCRAM
// credentials are written at format time), with the test PKI.
type secureBroker struct {
	Bootstrap string
	PKI       testPKI
}

func startSecureBroker(t *testing.T, libs string) secureBroker {
	t.Helper()
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	props := strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.voters=1@" + addr(ports[2]),
		"listeners=SECURE://" + addr(ports[0]) + ",INTERNAL://" + addr(ports[1]) + ",CONTROLLER://" + addr(ports[2]),
		"advertised.listeners=SECURE://" + addr(ports[0]) + ",INTERNAL://" + addr(ports[1]),
		"listener.security.protocol.map=SECURE:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name=INTERNAL",
		"controller.listener.names=CONTROLLER",
		"log.dirs=" + filepath.Join(dir, "data"),
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=3",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"log.cleaner.dedupe.buffer.size=8388608",
		"group.initial.rebalance.delay.ms=0",
		"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		`listener.name.secure.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_` + secUser + `="` + secPassword + `";`,
		"listener.name.secure.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + pki.ServerFile,
		"",
	}, "\n")
	conf := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(conf, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	cp := filepath.Join(libs, "*")
	scramUser := "[name=" + secUser + ",password=" + secPassword + "]"
	format := exec.Command("java", "-Xmx256m", "-XX:-UsePerfData", "-cp", cp, "kafka.tools.StorageTool", "format",
		"--cluster-id="+base64.RawURLEncoding.EncodeToString(id), "-c", conf,
		"--add-scram", "SCRAM-SHA-256="+scramUser, "--add-scram", "SCRAM-SHA-512="+scramUser)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("format: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		t.Fatal(err)
	}
	broker := exec.Command("java", "-Xmx384m", "-XX:-UsePerfData", "-cp", cp, "kafka.Kafka", conf)
	broker.Stdout, broker.Stderr = logf, logf
	broker.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-broker.Process.Pid, syscall.SIGKILL)
		_ = broker.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("broker log tail:\n%s", lastBytes(b, 3000))
		}
	})
	sb := secureBroker{Bootstrap: addr(ports[0]), PKI: pki}
	// Ready: an authenticated client gets metadata.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cl, err := kgo.NewClient(sb.kgoOpts(t, secUser, secPassword)...)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = cl.Ping(ctx)
			cancel()
			cl.Close()
		}
		if err == nil {
			return sb
		}
		if time.Now().After(deadline) {
			t.Fatalf("secure broker not ready: %v", err)
		}
		time.Sleep(time.Second)
	}
}

// kgoOpts is a franz-go client of the secure listener with SCRAM-SHA-512.
func (b secureBroker) kgoOpts(t *testing.T, user, pass string) []kgo.Opt {
	t.Helper()
	pem, err := os.ReadFile(b.PKI.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return []kgo.Opt{
		kgo.SeedBrokers(b.Bootstrap),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}),
		kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()),
	}
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
