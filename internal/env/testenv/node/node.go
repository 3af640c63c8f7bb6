// Package node assembles a real single-machine Kubernetes node for tests and
// for people who want to run kmt's pods: etcd and a kube-apiserver (through
// testenv), kube-controller-manager, kube-scheduler, Debian's containerd and
// runc with the bridge CNI plugin, and a kubelet, all built or installed on
// first use and everything on loopback or in network namespaces the node
// creates. Images are built without a container engine (images.go) and
// imported into containerd; pods use them with imagePullPolicy: Never.
//
// The facts that make a kubelet run here are in DESIGN.md ("A Kubernetes
// node on this machine"); the settings that carry them are in config.go.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
)

// KubernetesVersion of every Kubernetes binary on the node: testenv's, so
// the node's kube-apiserver is the one `make test` already builds and the
// other binaries compile on top of the same packages (520 more packages
// instead of 2190 for a separate version; a cold machine builds the
// Kubernetes parts once). Debian's containerd is 1.6, which lacks the CRI
// RuntimeConfig call: a kubelet up to 1.37 falls back to its configured
// cgroupDriver (the fallback goes in 1.38, cmd/kubelet/app/server.go),
// so a newer KubernetesVersion needs containerd 2.x.
const KubernetesVersion = testenv.KubernetesVersion

// NodeName is the registered node's name.
const NodeName = "kmt-node"

// Binaries built from k8s.io/kubernetes at KubernetesVersion.
var Binaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}

const ipForwardFile = "/proc/sys/net/ipv4/ip_forward"

// CNIBinDir is where Debian's containernetworking-plugins puts the plugins.
const CNIBinDir = "/usr/lib/cni"

// Options configure a node.
type Options struct {
	Logger *slog.Logger
	// Dir is the node's root folder; everything the node writes or mounts
	// is under it and Stop removes it. Default: a new temp folder.
	Dir string
	// ModuleDir is kmt's module root (images are built from its packages
	// and scripts/install-node-deps.sh is run from it). Default: found with
	// `go env GOMOD` from the working folder.
	ModuleDir string
}

// Node is a running node.
type Node struct {
	Dir string
	// Env is the API server and etcd.
	Env *testenv.Env
	// Clientset talks to the API server as cluster admin.
	Clientset kubernetes.Interface
	// KubeconfigPath is an admin kubeconfig for kubectl and helm.
	KubeconfigPath string
	// Took is how long Start took (builds included when they ran), and
	// LockWait the part of it spent waiting for another process's node
	// (the machine runs one at a time).
	Took, LockWait time.Duration

	l       layout
	bins    string // the Kubernetes binaries' folder
	logger  *slog.Logger
	daemons []*daemon
	unlock  func()
	stopped bool
	// ipForward is the machine's net.ipv4.ip_forward before the node ran.
	ipForward []byte
}

// Start builds and installs what is missing, starts the control plane,
// containerd and the kubelet, imports the pause and kmt images, and waits
// until the node is Ready and the default service account exists. On error
// everything started so far is torn down. One node runs per machine at a
// time (the bridge and subnet are fixed): a second Start waits for the first
// node's Stop.
func Start(ctx context.Context, o Options) (n *Node, err error) {
	start := time.Now()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ModuleDir == "" {
		if o.ModuleDir, err = moduleRoot(ctx); err != nil {
			return nil, err
		}
	}
	if err := installDeps(ctx, o.ModuleDir); err != nil {
		return nil, err
	}
	cache, err := testenv.CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	lockStart := time.Now()
	unlock, err := testenv.LockFile(ctx, filepath.Join(cache, "node.lock"))
	if err != nil {
		return nil, fmt.Errorf("waiting for the node another process runs on this machine: %w", err)
	}
	lockWait := time.Since(lockStart)
	sweepStale(o.Logger, os.TempDir(), BridgeName)
	built, err := EnsureBuilt(ctx, o.Logger, false)
	if err != nil {
		unlock()
		return nil, err
	}
	bins := built.Kubernetes
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", tempPrefix); err != nil {
			unlock()
			return nil, err
		}
	}
	n = &Node{Dir: o.Dir, l: layout{root: o.Dir}, bins: bins, logger: o.Logger, unlock: unlock, LockWait: lockWait}
	n.ipForward, _ = os.ReadFile(ipForwardFile)
	defer func() {
		if err != nil {
			if stopErr := n.Stop(); stopErr != nil {
				err = fmt.Errorf("%w (and tearing down: %v)", err, stopErr)
			}
			n = nil
		}
	}()
	if err := n.prepare(ctx, o.ModuleDir); err != nil {
		return n, err
	}
	// The API server listens on the bridge address (pods reach it there
	// through the kubernetes Service), so the bridge comes first.
	if err := createBridge(ctx); err != nil {
		return n, err
	}
	if err := n.startControlPlane(ctx, bins); err != nil {
		return n, err
	}
	if err := n.startContainerd(ctx); err != nil {
		return n, err
	}
	if err := n.startKubeProxy(bins); err != nil {
		return n, err
	}
	if err := n.startKubelet(ctx, bins); err != nil {
		return n, err
	}
	if err := n.waitReady(ctx); err != nil {
		return n, err
	}
	if err := n.startDNS(ctx, built.CoreDNS); err != nil {
		return n, err
	}
	n.Took = time.Since(start)
	n.logger.Info("node ready", "node", NodeName, "version", KubernetesVersion, "dir", n.Dir, "took", n.Took.Round(time.Millisecond), "lock_wait", n.LockWait.Round(time.Millisecond))
	return n, nil
}

// StartT is Start for tests: it fails t on error and stops the node in
// t.Cleanup, so a failing test still leaves nothing behind.
func StartT(t testing.TB, o Options) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	n, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("node: tearing down: %v", err)
		}
	})
	return n
}

// prepare writes the configs and builds the images.
func (n *Node) prepare(ctx context.Context, moduleDir string) error {
	for _, d := range []string{n.l.logs(), n.l.imagesDir(), n.l.kubeletDir(), n.l.path("pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := writeFiles(map[string]string{
		n.l.containerdConfig():                             containerdTOML(n.l, CNIBinDir),
		filepath.Join(n.l.cniConfDir(), "10-kmt.conflist"): cniConflist(n.l),
	}); err != nil {
		return err
	}
	start := time.Now()
	if _, err := BuildBaseImages(ctx, moduleDir, n.l.imagesDir()); err != nil {
		return err
	}
	n.logger.Info("images built", "images", []string{PauseImage, KmtImage}, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// startControlPlane starts etcd and kube-apiserver (testenv, with the
// ServiceAccount admission plugin back on since pods run here), then
// kube-controller-manager (service accounts, tokens' root CA, Jobs,
// ReplicaSets, ...) and kube-scheduler, both without serving ports.
func (n *Node) startControlPlane(ctx context.Context, bins string) error {
	env, err := testenv.New(ctx, testenv.Options{
		Logger:    n.logger,
		AssetsDir: bins,
		Dir:       n.Dir,
		APIServerFlags: map[string]string{
			"disable-admission-plugins":       "",
			"kubelet-preferred-address-types": "InternalIP",
			"service-cluster-ip-range":        ServiceCIDR,
		},
		ServeOn:    BridgeIP,
		ServingIPs: []net.IP{net.ParseIP(APIServiceIP)},
	})
	if err != nil {
		return err
	}
	n.Env = env
	n.Clientset, err = kubernetes.NewForConfig(env.Config)
	if err != nil {
		return err
	}
	n.KubeconfigPath = n.l.kubeconfig()
	if err := writeFiles(map[string]string{n.KubeconfigPath: string(env.Kubeconfig), n.l.caFile(): string(env.CA)}); err != nil {
		return err
	}
	if _, err := n.startDaemon("kube-controller-manager", filepath.Join(bins, "kube-controller-manager"),
		"--kubeconfig="+n.KubeconfigPath,
		"--service-account-private-key-file="+filepath.Join(env.CertDir, "sa-signer.key"),
		"--root-ca-file="+n.l.caFile(),
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--secure-port=0",
	); err != nil {
		return err
	}
	_, err = n.startDaemon("kube-scheduler", filepath.Join(bins, "kube-scheduler"),
		"--kubeconfig="+n.KubeconfigPath,
		"--leader-elect=false",
		"--secure-port=0",
	)
	return err
}

// Built are the programs the node runs that are built from Go modules and
// cached: the Kubernetes binaries' folder, CoreDNS, and Chaos Mesh's
// controller-manager and chaos-daemon (when asked for: StartChaosMesh
// builds them on first use, `kmt-node build` ahead of time).
type Built struct {
	Kubernetes, CoreDNS, ChaosMesh, ChaosDaemon string
}

// EnsureBuilt builds what the node runs and is missing from the cache.
// `kmt-node build` calls it to warm a machine up.
func EnsureBuilt(ctx context.Context, logger *slog.Logger, chaosMesh bool) (Built, error) {
	var b Built
	var err error
	if b.Kubernetes, err = testenv.EnsureBinaries(ctx, logger, KubernetesVersion, Binaries...); err != nil {
		return b, err
	}
	if b.CoreDNS, err = EnsureCoreDNS(ctx, logger); err != nil {
		return b, err
	}
	if chaosMesh {
		if b.ChaosMesh, err = EnsureChaosMesh(ctx, logger); err != nil {
			return b, err
		}
		if b.ChaosDaemon, err = EnsureChaosDaemon(ctx, logger); err != nil {
			return b, err
		}
	}
	return b, nil
}

// daemon is the running daemon called name, or nil.
func (n *Node) daemon(name string) *daemon {
	for _, d := range n.daemons {
		if d.name == name {
			return d
		}
	}
	return nil
}

func (n *Node) startDaemon(name, bin string, args ...string) (*daemon, error) {
	d, err := startDaemon(name, n.l.logs(), bin, args...)
	if err != nil {
		return nil, err
	}
	n.daemons = append(n.daemons, d)
	return d, nil
}

// startContainerd starts containerd on the node's private socket, waits
// until its CRI answers, and imports the images.
func (n *Node) startContainerd(ctx context.Context) error {
	d, err := n.startDaemon("containerd", "containerd", "--config", n.l.containerdConfig())
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 60*time.Second, d, func() error { return criVersion(ctx, n.l.containerdSocket()) }); err != nil {
		return fmt.Errorf("containerd did not answer on %s: %w\n%s", n.l.containerdSocket(), err, d.logTail(3000))
	}
	tars, err := filepath.Glob(filepath.Join(n.l.imagesDir(), "*.tar"))
	if err != nil {
		return err
	}
	for _, tar := range tars {
		if err := n.ctr(ctx, "images", "import", tar); err != nil {
			return err
		}
	}
	return nil
}

// KmtBinary is the static kmt binary the kmt image was built from, for
// running kmt on this machine beside its pods (kmt cluster run, a local
// run of the same scenario).
func (n *Node) KmtBinary() string { return filepath.Join(n.l.imagesDir(), "kmt") }

// ImportImage builds spec (see BuildImage) into the node's image folder
// and imports it into containerd, for pods to use with imagePullPolicy:
// Never.
func (n *Node) ImportImage(ctx context.Context, spec ImageSpec) error {
	start := time.Now()
	tar := filepath.Join(n.l.imagesDir(), strings.NewReplacer("/", "_", ":", "_").Replace(spec.Ref)+".tar")
	if err := BuildImage(spec, tar); err != nil {
		return err
	}
	if err := n.ctr(ctx, "images", "import", tar); err != nil {
		return err
	}
	n.logger.Info("image imported", "image", spec.Ref, "took", time.Since(start).Round(time.Millisecond))
	return os.Remove(tar)
}

// ctr runs containerd's CLI against the node's containerd, in the CRI's
// k8s.io namespace.
func (n *Node) ctr(ctx context.Context, args ...string) error {
	full := append([]string{"--address", n.l.containerdSocket(), "--namespace", "k8s.io"}, args...)
	out, err := exec.CommandContext(ctx, "ctr", full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// startKubelet writes the kubelet's config (on two free ports) and starts it
// as NodeName with the node address BridgeIP (the hostname does not resolve
// here, and the API server reaches the kubelet by InternalIP).
func (n *Node) startKubelet(ctx context.Context, bins string) error {
	port, err := freePort(BridgeIP)
	if err != nil {
		return err
	}
	healthz, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	if err := writeFiles(map[string]string{n.l.kubeletConfig(): kubeletYAML(n.l, port, healthz)}); err != nil {
		return err
	}
	_, err = n.startDaemon("kubelet", filepath.Join(bins, "kubelet"),
		"--config="+n.l.kubeletConfig(),
		"--kubeconfig="+n.KubeconfigPath,
		"--root-dir="+n.l.kubeletDir(),
		"--node-ip="+BridgeIP,
		"--hostname-override="+NodeName,
		"--v=1",
	)
	return err
}

// waitReady waits for the node's Ready condition and for the default
// service account (pods are refused without it).
func (n *Node) waitReady(ctx context.Context) error {
	kubelet := n.daemon("kubelet")
	err := waitFor(ctx, 3*time.Minute, kubelet, func() error {
		node, err := n.Clientset.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s not ready: %s: %s", NodeName, c.Reason, c.Message)
			}
		}
		return fmt.Errorf("node %s has no Ready condition yet", NodeName)
	})
	if err != nil {
		return fmt.Errorf("waiting for node %s to be Ready: %w\nkubelet log:\n%s", NodeName, err, kubelet.logTail(4000))
	}
	return waitFor(ctx, time.Minute, n.daemons[0], func() error {
		_, err := n.Clientset.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// waitFor polls check until it succeeds, d exits, or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, d *daemon, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if done, err := d.exited(); done {
			return fmt.Errorf("%s exited (%v) while waiting; last check: %v\n%s", d.name, err, last, d.logTail(3000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last check: %v", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// freePort finds a free TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tempPrefix names the temp folders of nodes started without Options.Dir.
const tempPrefix = "kmt-node-"

// sweepStale removes the temp folders (and their processes, mounts) of
// nodes whose harness died without Stop, e.g. a test binary killed by its
// timeout. It runs under the node lock, which a live node holds, so every
// such folder it finds is stale.
func sweepStale(logger *slog.Logger, tmpDir, bridge string) {
	stale, _ := filepath.Glob(filepath.Join(tmpDir, tempPrefix+"*"))
	for _, dir := range stale {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		logger.Warn("sweeping a node left by a harness that died", "dir", dir)
		if err := sweep(dir, bridge); err != nil {
			logger.Warn("sweeping a stale node failed", "dir", dir, "err", err)
		}
	}
}

// createBridge creates the pod bridge with BridgeIP before the API server
// (which listens there) and the kubelet (which checks that its node IP is
// on an interface) start; the CNI bridge plugin then reuses the bridge. The
// host routes ServiceCIDR onto it. A leftover bridge from a node that died
// is replaced.
func createBridge(ctx context.Context) error {
	if err := deleteBridge(BridgeName); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"link", "add", BridgeName, "type", "bridge"},
		{"addr", "add", bridgeCIDR, "dev", BridgeName},
		{"link", "set", BridgeName, "up"},
		{"route", "add", ServiceCIDR, "dev", BridgeName},
	} {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s (the node needs CAP_NET_ADMIN and the kernel's bridge support)", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("finding kmt's module root with `go env GOMOD` (%v): run from inside the repository or set Options.ModuleDir", err)
	}
	return filepath.Dir(gomod), nil
}

// installDeps runs scripts/install-node-deps.sh, which installs containerd,
// runc and the CNI plugins from Debian's packages when they are missing.
func installDeps(ctx context.Context, moduleDir string) error {
	script := filepath.Join(moduleDir, "scripts", "install-node-deps.sh")
	out, err := exec.CommandContext(ctx, script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s failed: %w\n%s(install containerd, runc and containernetworking-plugins from Debian's packages by hand, then retry)", script, err, out)
	}
	return nil
}
