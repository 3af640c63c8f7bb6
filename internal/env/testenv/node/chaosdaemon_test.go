package node

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
)

// TestChaosDaemonTLS: the node's chaos-daemon certificates pass the TLS
// checks both ends make, configured as Chaos Mesh configures them (server:
// pkg/chaosdaemon newGRPCServer, TLS 1.3, a client certificate from the CA
// required; client: pkg/grpc FileProvider, the CA as roots, server name
// chaos-daemon.chaos-mesh.org), over a real handshake; and a client
// without the certificate is turned away, so no other pod can ask the
// daemon to kill a container.
func TestChaosDaemonTLS(t *testing.T) {
	m, err := newChaosDaemonTLS()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(m.CA) {
		t.Fatal("the CA is not PEM")
	}
	serverCert, err := tls.X509KeyPair(m.ServerCert, m.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := tls.X509KeyPair(m.ClientCert, m.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	server := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// handshake connects with client and returns the server's verdict (TLS
	// 1.3 checks the client certificate after the client's handshake has
	// returned, so the server side is asked).
	handshake := func(client *tls.Config) error {
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			done <- c.(*tls.Conn).Handshake()
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err != nil {
			<-done
			return err
		}
		defer c.Close()
		return <-done
	}
	if err := handshake(&tls.Config{Certificates: []tls.Certificate{clientCert}, RootCAs: pool, ServerName: chaosDaemonServerName}); err != nil {
		t.Fatalf("the controller-manager's client certificate was refused: %v", err)
	}
	err = handshake(&tls.Config{RootCAs: pool, ServerName: chaosDaemonServerName})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without a certificate: err = %v, want the daemon to refuse it", err)
	}
	if err := handshake(&tls.Config{Certificates: []tls.Certificate{clientCert}, RootCAs: pool, ServerName: "other.example"}); err == nil {
		t.Fatal("the daemon's certificate passed for a name it was not made for")
	}
}
