package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configure a test API server.
type Options struct {
	// CRDs installs the Chaos Mesh and prometheus-operator CRDs.
	CRDs bool
	// StrimziCRDs installs Strimzi's Kafka, KafkaNodePool and
	// KafkaMirrorMaker2 CRDs at StrimziVersion (kept in crds/).
	StrimziCRDs bool
	// ExtraCRDDirs are installed too.
	ExtraCRDDirs []string
	Logger       *slog.Logger
	// AssetsDir, when set, holds prebuilt binaries (kube-apiserver, etcd)
	// to use instead of EnsureAssets' (a node harness builds the whole
	// control plane at its own version).
	AssetsDir string
	// APIServerFlags are set on kube-apiserver (over envtest's defaults); a
	// flag with an empty value is removed instead (e.g.
	// "disable-admission-plugins": "" turns the ServiceAccount admission
	// plugin back on for a cluster that runs pods).
	APIServerFlags map[string]string
	// Dir, when set, holds etcd's data (Dir/etcd) and the API server's
	// certificates (Dir/apiserver) instead of fresh temp folders, so a
	// harness that owns Dir finds these processes by it (their command
	// lines name it) even after a crash. Stop leaves Dir to its owner.
	Dir string
	// ServeOn is the address the API server listens on and advertises
	// (default 127.0.0.1), and ServingIPs more addresses its serving
	// certificate is valid for: pods reach the API server through the
	// kubernetes Service, so a node serves on its bridge address and names
	// the Service's cluster IP. Either one needs Dir (the certificates are
	// written there instead of by envtest).
	ServeOn    string
	ServingIPs []net.IP
}

// StrimziVersion is the Strimzi release whose CRDs StrimziCRDDir holds; it
// must equal kind/versions.env's STRIMZI_VERSION (a kind test checks).
const StrimziVersion = "0.45.2"

// StrimziCRDDir is the folder of the Strimzi CRDs (see crds/*/SOURCE.md for
// why they are kept in the repository).
func StrimziCRDDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "crds", "strimzi-"+StrimziVersion)
}

// Env is a running API server.
type Env struct {
	Config *rest.Config
	// Client is an untyped-friendly client (core types and CRDs as
	// unstructured objects).
	Client client.Client
	// Kubeconfig is a kubeconfig for the admin user.
	Kubeconfig []byte
	// AssetsDir holds the binaries (kube-apiserver, etcd, kubectl if any).
	AssetsDir string
	// CRDs are the installed CustomResourceDefinitions.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// CertDir holds the API server's certificates and the service-account
	// signing key (sa-signer.key), which a kube-controller-manager needs.
	CertDir string
	// CA is the PEM certificate that signed the API server's serving cert.
	CA []byte

	env *envtest.Environment
}

// New builds what is missing (see EnsureAssets) and starts etcd and
// kube-apiserver on loopback. Call Stop when done.
func New(ctx context.Context, o Options) (*Env, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	dir := o.AssetsDir
	if dir == "" {
		var err error
		if dir, err = EnsureAssets(ctx, o.Logger); err != nil {
			return nil, err
		}
	}
	var crdDirs []string
	if o.CRDs {
		var err error
		if crdDirs, err = CRDDirs(ctx); err != nil {
			return nil, err
		}
	}
	if o.StrimziCRDs {
		crdDirs = append(crdDirs, StrimziCRDDir())
	}
	crdDirs = append(crdDirs, o.ExtraCRDDirs...)
	scheme := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 2 * time.Minute, // a busy 2-core machine
		ControlPlaneStopTimeout:  30 * time.Second,
		// envtest waits 10s by default for CRDs to be served; a 2-core
		// machine shared by several test binaries needs longer.
		CRDInstallOptions: envtest.CRDInstallOptions{MaxTime: 3 * time.Minute},
	}
	if o.Dir != "" {
		te.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(o.Dir, "etcd")}
		te.ControlPlane.APIServer = &envtest.APIServer{CertDir: filepath.Join(o.Dir, "apiserver")}
		for _, d := range []string{te.ControlPlane.Etcd.DataDir, te.ControlPlane.APIServer.CertDir} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, fmt.Errorf("creating %s: %w", d, err)
			}
		}
	}
	api := te.ControlPlane.GetAPIServer()
	if o.ServeOn != "" || len(o.ServingIPs) > 0 {
		if o.Dir == "" {
			return nil, fmt.Errorf("testenv: ServeOn/ServingIPs need Options.Dir (the certificates are written there)")
		}
		if err := serveOn(api, o.ServeOn, o.ServingIPs); err != nil {
			return nil, err
		}
	}
	for k, v := range o.APIServerFlags {
		if v == "" {
			api.Configure().Disable(k)
		} else {
			api.Configure().Set(k, v)
		}
	}
	start := time.Now()
	cfg, err := te.Start()
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("starting kube-apiserver %s and etcd from %s: %w", KubernetesVersion, dir, err)
	}
	o.Logger.Info("test API server up", "binaries", dir, "took", time.Since(start).Round(time.Millisecond), "crds", len(te.CRDs))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("client for the test API server: %w", err)
	}
	return &Env{Config: cfg, Client: c, Kubeconfig: te.KubeConfig, AssetsDir: dir, CRDs: te.CRDs,
		CertDir: api.CertDir, CA: api.SecureServing.CA, env: te}, nil
}

// Stop stops the API server and etcd and removes their data.
func (e *Env) Stop() error { return e.env.Stop() }

// Start is New for tests: it fails t on error and stops the server in
// t.Cleanup. The first call on a machine builds kube-apiserver (minutes).
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e, err := New(ctx, o)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("testenv: stopping the API server: %v", err)
		}
	})
	return e
}
