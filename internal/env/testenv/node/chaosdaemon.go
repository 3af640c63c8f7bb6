package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
)

// Chaos Mesh's chaos-daemon, built from its Go module at
// testenv.ChaosMeshVersion like the controller-manager, runs on the node as
// Chaos Mesh's Helm chart runs it (helm/chaos-mesh/templates/
// chaos-daemon-daemonset.yaml at that commit): a DaemonSet in the
// controller-manager's namespace, privileged with SYS_PTRACE and the host's
// PID namespace, runtime containerd on the node's containerd socket, and
// its gRPC port behind a headless Service called chaos-daemon. The
// controller-manager finds a pod's daemon through that Service's
// EndpointSlices (controllers/utils/chaosdaemon: slices named
// chaos-daemon-* in its NAMESPACE, the endpoint on the pod's node) and
// talks to it over mutual TLS, as the chart's default mtls.enabled does:
// the daemon accepts only a client certificate from the node's own CA, so
// no other pod on the pod network can ask it to kill a container.
//
// What it does here: PodChaos container-kill, a containerd task kill with
// SIGKILL (pkg/chaosdaemon/crclients/containerd), the only way through
// Chaos Mesh to kill a process with no SIGTERM first (pod-kill deletes the
// pod and the kubelet sends SIGTERM). The daemon's other chaos needs tools
// its upstream image carries and this image does not (tc, iptables, ipset,
// stress-ng, ...), see faults.go.
//
// Not mounted, because container-kill does not use them: /sys (the chart's
// /host-sys, for stress and I/O chaos) and /lib/modules.

// ChaosDaemonImage runs the chaos-daemon binary.
const ChaosDaemonImage = "kmt.local/chaos-daemon:dev"

const (
	// chaosMeshNS is the controller-manager's NAMESPACE, where it looks for
	// the daemon's EndpointSlices.
	chaosMeshNS = "chaos-mesh"
	// chaosDaemonName is the DaemonSet's, container's and headless
	// Service's name; the EndpointSlice controller names the Service's
	// slices chaos-daemon-<random>, the prefix the controller-manager
	// matches.
	chaosDaemonName = "chaos-daemon"
	// chaosDaemonGRPCPort is the daemon's and the controller-manager's
	// default (--grpc-port, CHAOS_DAEMON_SERVICE_PORT).
	chaosDaemonGRPCPort = 31767
	chaosDaemonHTTPPort = 31766
	// chaosDaemonServerName is the name the controller-manager checks the
	// daemon's certificate against (pkg/grpc.ChaosDaemonServerName).
	chaosDaemonServerName = "chaos-daemon.chaos-mesh.org"
	// chaosDaemonCertDir is where the daemon's pod mounts its certificates
	// (the chart's path).
	chaosDaemonCertDir = "/etc/chaos-daemon/cert"
	// chaosDaemonSocket is where the pod sees the node's containerd socket.
	chaosDaemonSocket = "/host-run/containerd.sock"
)

// chaosDaemonLabels are the chart's pod labels; the component label is the
// one its Service selects.
var chaosDaemonLabels = map[string]string{
	"app.kubernetes.io/name":      "chaos-mesh",
	"app.kubernetes.io/instance":  "kmt-node",
	"app.kubernetes.io/component": chaosDaemonName,
}

// EnsureChaosDaemon returns the cached chaos-daemon, building it when
// missing (minutes when cold). It has C code (chaos-driver's client.c), so
// it is built with cgo and linked statically against glibc.
func EnsureChaosDaemon(ctx context.Context, logger *slog.Logger) (string, error) {
	return ensureChaosMeshProgram(ctx, logger, "chaos-daemon", testenv.BuildModuleCgo)
}

// ChaosDaemonImageSpec is the chaos-daemon image from the static binary,
// at the path the chart's command names. It runs as root: the daemon
// talks to containerd's root-owned socket and enters other processes'
// namespaces.
func ChaosDaemonImageSpec(bin string) ImageSpec {
	return ImageSpec{
		Ref:        ChaosDaemonImage,
		Files:      []ImageFile{{Path: "/usr/local/bin/chaos-daemon", Source: bin, Mode: 0o755}},
		Dirs:       []string{"/tmp"},
		Entrypoint: []string{"/usr/local/bin/chaos-daemon"},
	}
}

// chaosDaemonTLS is the mutual TLS material of the daemon and its client,
// PEM encoded.
type chaosDaemonTLS struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey []byte
}

// newChaosDaemonTLS makes a CA for this node only, a server certificate for
// chaosDaemonServerName and a client certificate for the controller-manager
// (a day long: a node lives for one test run).
func newChaosDaemonTLS() (chaosDaemonTLS, error) {
	var out chaosDaemonTLS
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return out, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kmt-node chaos-mesh CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return out, fmt.Errorf("chaos-daemon CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return out, err
	}
	out.CA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	leaf := func(serial int64, cn string, dns []string, usage x509.ExtKeyUsage) (cert, key []byte, err error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			DNSNames:     dns,
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			return nil, nil, fmt.Errorf("chaos-daemon certificate %s: %w", cn, err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
	}
	if out.ServerCert, out.ServerKey, err = leaf(2, chaosDaemonServerName, []string{chaosDaemonServerName}, x509.ExtKeyUsageServerAuth); err != nil {
		return out, err
	}
	out.ClientCert, out.ClientKey, err = leaf(3, "chaos-controller-manager", nil, x509.ExtKeyUsageClientAuth)
	return out, err
}

// chaosDaemonObjects are the chart's chaos-daemon objects for this node:
// the namespace, the daemon's certificates, the headless Service and the
// DaemonSet on the containerd socket at socket.
func chaosDaemonObjects(tlsMat chaosDaemonTLS, socket string) []metav1.Object {
	meta := metav1.ObjectMeta{Name: chaosDaemonName, Namespace: chaosMeshNS, Labels: chaosDaemonLabels}
	certs := metav1.ObjectMeta{Name: chaosDaemonName + "-certs", Namespace: chaosMeshNS, Labels: chaosDaemonLabels}
	svc := service(meta, map[string]string{"app.kubernetes.io/component": chaosDaemonName},
		tcpPort("grpc", chaosDaemonGRPCPort, intstr.FromString("grpc")),
		tcpPort("http", chaosDaemonHTTPPort, intstr.FromString("http")))
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	pod := corev1.PodSpec{
		HostPID: true,
		Containers: []corev1.Container{{
			Name:            chaosDaemonName,
			Image:           ChaosDaemonImage,
			ImagePullPolicy: corev1.PullNever,
			Args: []string{
				"--runtime", "containerd",
				"--runtime-socket-path", chaosDaemonSocket,
				"--grpc-port", fmt.Sprint(chaosDaemonGRPCPort),
				"--http-port", fmt.Sprint(chaosDaemonHTTPPort),
				"--ca", chaosDaemonCertDir + "/ca.crt",
				"--cert", chaosDaemonCertDir + "/tls.crt",
				"--key", chaosDaemonCertDir + "/tls.key",
			},
			Env: []corev1.EnvVar{{Name: "TZ", Value: "UTC"}},
			Ports: []corev1.ContainerPort{
				{Name: "grpc", ContainerPort: chaosDaemonGRPCPort},
				{Name: "http", ContainerPort: chaosDaemonHTTPPort},
			},
			SecurityContext: &corev1.SecurityContext{
				Privileged:   ptr.To(true),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}},
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "socket-path", MountPath: chaosDaemonSocket},
				{Name: "chaos-daemon-cert", MountPath: chaosDaemonCertDir, ReadOnly: true},
			},
			ReadinessProbe: tcpReadiness(chaosDaemonGRPCPort),
		}},
		Volumes: []corev1.Volume{
			// The socket alone, not its folder: the node's containerd folder
			// also holds its root and state with the containers' mounts.
			{Name: "socket-path", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: socket, Type: ptr.To(corev1.HostPathSocket)}}},
			{Name: "chaos-daemon-cert", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: certs.Name}}},
		},
	}
	return []metav1.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chaosMeshNS}},
		&corev1.Secret{ObjectMeta: certs, Data: map[string][]byte{"ca.crt": tlsMat.CA, "tls.crt": tlsMat.ServerCert, "tls.key": tlsMat.ServerKey}},
		svc,
		&appsv1.DaemonSet{
			ObjectMeta: meta,
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: chaosDaemonLabels},
				Template: podTemplate(meta, pod),
			},
		},
	}
}

// startChaosDaemon imports the chaos-daemon image, runs the DaemonSet and
// waits until the controller-manager can find it: its pod ready and an
// EndpointSlice of the chaos-daemon Service holding it on this node. It
// returns the controller-manager's environment for talking to it (its
// namespace, port and client certificate).
func (n *Node) startChaosDaemon(ctx context.Context, bin string) ([]string, error) {
	if err := n.ImportImage(ctx, ChaosDaemonImageSpec(bin)); err != nil {
		return nil, err
	}
	tlsMat, err := newChaosDaemonTLS()
	if err != nil {
		return nil, err
	}
	dir := n.l.path("chaos-mesh", "daemon-client")
	files := map[string]string{
		filepath.Join(dir, "ca.crt"):     string(tlsMat.CA),
		filepath.Join(dir, "client.crt"): string(tlsMat.ClientCert),
		filepath.Join(dir, "client.key"): string(tlsMat.ClientKey),
	}
	if err := writeFiles(files); err != nil {
		return nil, err
	}
	if err := createObjects(ctx, n.Clientset, "chaos-daemon", chaosDaemonObjects(tlsMat, n.l.containerdSocket())...); err != nil {
		return nil, err
	}
	err = waitFor(ctx, 3*time.Minute, n.daemon("kubelet"), func() error {
		slices, err := n.Clientset.DiscoveryV1().EndpointSlices(chaosMeshNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, s := range slices.Items {
			if !strings.HasPrefix(s.Name, chaosDaemonName+"-") {
				continue
			}
			for _, ep := range s.Endpoints {
				if ep.NodeName != nil && *ep.NodeName == NodeName && ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					return nil
				}
			}
		}
		return fmt.Errorf("no ready endpoint of Service %s/%s on node %s yet", chaosMeshNS, chaosDaemonName, NodeName)
	})
	if err != nil {
		return nil, fmt.Errorf("chaos-daemon: %w\n%s", err, n.podsReport(ctx, chaosMeshNS))
	}
	return []string{
		"NAMESPACE=" + chaosMeshNS,
		fmt.Sprintf("CHAOS_DAEMON_SERVICE_PORT=%d", chaosDaemonGRPCPort),
		"CHAOS_MESH_CA_CERT=" + filepath.Join(dir, "ca.crt"),
		"CHAOS_DAEMON_CLIENT_CERT=" + filepath.Join(dir, "client.crt"),
		"CHAOS_DAEMON_CLIENT_KEY=" + filepath.Join(dir, "client.key"),
	}, nil
}
