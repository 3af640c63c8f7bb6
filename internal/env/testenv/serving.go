package testenv

import (
	"crypto"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ServiceDNSNames are the names in-cluster clients may use for the API
// server (the kubernetes Service in the default namespace).
var ServiceDNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}

// serveOn makes the API server listen on host (default 127.0.0.1, a free
// port) and advertise it, and writes its certificates into api.CertDir
// before envtest would: a serving certificate valid for host, ips and
// ServiceDNSNames (envtest's names only localhost and the listen address,
// so a pod dialling the kubernetes Service's cluster IP would refuse it),
// and the service-account signing key envtest writes beside it. envtest
// keeps certificates it finds, and its clients trust api.SecureServing.CA.
func serveOn(api *envtest.APIServer, host string, ips []net.IP) error {
	if host == "" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return fmt.Errorf("testenv: finding a free port for the API server on %s: %w", host, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	chain, key, err := certutil.GenerateSelfSignedCertKey(host, ips, ServiceDNSNames)
	if err != nil {
		return fmt.Errorf("testenv: serving certificate for %s %v: %w", host, ips, err)
	}
	// The chain is the serving certificate, then the CA that signed it.
	rest := chain
	var ca []byte
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		ca = pem.EncodeToMemory(b)
	}
	saKeyPEM, err := keyutil.MakeEllipticPrivateKeyPEM()
	if err != nil {
		return err
	}
	saKey, err := keyutil.ParsePrivateKeyPEM(saKeyPEM)
	if err != nil {
		return err
	}
	saCert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "sa-signer"}, saKey.(crypto.Signer))
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"apiserver.crt": chain,
		"apiserver.key": key,
		"sa-signer.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: saCert.Raw}),
		"sa-signer.key": saKeyPEM,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(api.CertDir, name), data, 0o600); err != nil {
			return fmt.Errorf("testenv: writing %s: %w", name, err)
		}
	}
	api.SecureServing.Address = host
	api.SecureServing.Port = strconv.Itoa(port)
	api.SecureServing.CA = ca
	api.Configure().Set("advertise-address", host)
	return nil
}
