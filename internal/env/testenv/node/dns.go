package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
)

// Cluster DNS: CoreDNS from its Go module, with only the plugins a node
// needs (kubernetes, cache, errors, loadbalance, ready), built into a
// static binary once and cached, run as a Deployment in kube-system behind
// the kube-dns Service at DNSServiceIP. It answers for ClusterDomain and
// nothing else: it forwards no query, so no name lookup leaves the machine.
const (
	CoreDNSVersion = "v1.15.0"
	CoreDNSImage   = "kmt.local/coredns:" + CoreDNSVersion
	ClusterDomain  = "cluster.local"
	// coreDNSPort is where CoreDNS listens in its pod (unprivileged: the
	// image runs as nonroot); the Service maps port 53 to it.
	coreDNSPort = 1053
	// coreDNSReadyPort is the ready plugin's, for the readiness probe.
	coreDNSReadyPort = 8181
)

// coreDNSMain is the throwaway module's main: CoreDNS's own main with a
// shorter plugin list (the full one pulls every cloud provider's SDK).
const coreDNSMain = `package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
`

// EnsureCoreDNS returns the cached CoreDNS binary, building it from the Go
// module proxy when missing (minutes when cold).
func EnsureCoreDNS(ctx context.Context, logger *slog.Logger) (string, error) {
	return ensureCached(ctx, logger, "coredns", CoreDNSVersion, func(out string) error {
		return testenv.BuildModule(ctx, map[string]string{
			"go.mod":  "module kmt.local/coredns\n\ngo 1.26.0\n\nrequire github.com/coredns/coredns " + CoreDNSVersion + "\n",
			"main.go": coreDNSMain,
		}, ".", out)
	})
}

// ensureCached returns <cache>/<name>-<version>/<name>, running build(out)
// first when it is missing. A lock file serialises concurrent callers, so
// one builds and the others wait and reuse it.
func ensureCached(ctx context.Context, logger *slog.Logger, name, version string, build func(out string) error) (string, error) {
	cache, err := testenv.CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, name+"-"+version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := testenv.LockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	start := time.Now()
	logger.Info("building from the Go module proxy (cached afterwards; minutes when cold)", "program", name, "version", version, "into", dir)
	if err := build(bin); err != nil {
		return "", fmt.Errorf("%s %s: %w", name, version, err)
	}
	logger.Info("built", "program", name, "took", time.Since(start).Round(time.Second))
	return bin, nil
}

// CoreDNSImageSpec is the CoreDNS image from the static binary.
func CoreDNSImageSpec(bin string) ImageSpec {
	return ImageSpec{
		Ref:        CoreDNSImage,
		Files:      []ImageFile{{Path: "/coredns", Source: bin, Mode: 0o755}},
		Entrypoint: []string{"/coredns"},
		User:       nonrootUser,
	}
}

// corefile serves ClusterDomain and the reverse zones from the API server;
// any other name is refused (no forward plugin).
var corefile = fmt.Sprintf(`.:%d {
    errors
    ready :%d
    kubernetes %s in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
}
`, coreDNSPort, coreDNSReadyPort, ClusterDomain)

// startDNS imports the CoreDNS image and creates its RBAC, Corefile,
// Deployment and the kube-dns Service, then waits until the pod is ready
// (it reads Services through the kubernetes Service, so this also proves
// that a pod reaches the API server through kube-proxy).
func (n *Node) startDNS(ctx context.Context, bin string) error {
	if err := n.ImportImage(ctx, CoreDNSImageSpec(bin)); err != nil {
		return err
	}
	const ns, name = "kube-system", "coredns"
	labels := map[string]string{"k8s-app": "kube-dns"}
	meta := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	objs := clusterRoleFor(meta, "system:coredns", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
	})
	svc := service(metav1.ObjectMeta{Name: "kube-dns", Namespace: ns, Labels: labels}, labels,
		corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(coreDNSPort)},
		corev1.ServicePort{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(coreDNSPort)})
	svc.Spec.ClusterIP = DNSServiceIP
	objs = append(objs,
		&corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"Corefile": corefile}},
		deployment(meta, coreDNSPod(meta.Name)),
		svc)
	if err := createObjects(ctx, n.Clientset, "cluster DNS", objs...); err != nil {
		return err
	}
	if err := n.WaitDeploymentReady(ctx, ns, name, 3*time.Minute); err != nil {
		return fmt.Errorf("cluster DNS (CoreDNS): %w", err)
	}
	return nil
}

// WaitDeploymentReady waits until Deployment ns/name has a ready replica.
func (n *Node) WaitDeploymentReady(ctx context.Context, ns, name string, timeout time.Duration) error {
	err := waitFor(ctx, timeout, n.daemon("kubelet"), func() error {
		d, err := n.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.ReadyReplicas < 1 {
			return fmt.Errorf("deployment %s/%s: no ready replica yet", ns, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w\n%s", err, n.podsReport(ctx, ns))
	}
	return nil
}

// coreDNSPod runs CoreDNS with the Corefile of ConfigMap name under
// ServiceAccount name.
func coreDNSPod(name string) corev1.PodSpec {
	return corev1.PodSpec{
		ServiceAccountName: name,
		// Default: the node's (empty) resolver, not itself.
		DNSPolicy: corev1.DNSDefault,
		Containers: []corev1.Container{{
			Name:            "coredns",
			Image:           CoreDNSImage,
			ImagePullPolicy: corev1.PullNever,
			Args:            []string{"-conf", "/etc/coredns/Corefile"},
			VolumeMounts:    []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns"}},
			ReadinessProbe:  httpReadiness("/ready", coreDNSReadyPort),
		}},
		Volumes: []corev1.Volume{configMapVolume("config", name)},
	}
}
