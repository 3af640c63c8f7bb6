package node

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// PrometheusImage runs Debian's prometheus binary (the one kmt's
// differential PromQL tests use) with the shared libraries it loads.
const PrometheusImage = "kmt.local/prometheus:debian"

// PrometheusImageSpec is the Prometheus image from the machine's
// prometheus binary (Debian's package) and the libraries ldd finds for it.
func PrometheusImageSpec() (ImageSpec, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return ImageSpec{}, fmt.Errorf("no prometheus binary on PATH (scripts/install-deps.sh installs Debian's prometheus package): %w", err)
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		return ImageSpec{}, err
	}
	libs, err := sharedLibraries("", []string{bin})
	if err != nil {
		return ImageSpec{}, err
	}
	files := []ImageFile{{Path: "/bin/prometheus", Source: bin, Mode: 0o755}}
	for _, l := range libs {
		files = append(files, ImageFile{Path: l, Source: l, Mode: 0o755})
	}
	return ImageSpec{
		Ref:        PrometheusImage,
		Files:      files,
		Dirs:       []string{"/tmp", "/prometheus"},
		Env:        []string{"LD_LIBRARY_PATH=" + libraryDirs(libs)},
		Entrypoint: []string{"/bin/prometheus"},
		User:       nonrootUser,
		WorkingDir: "/prometheus",
	}, nil
}

// PrometheusURL is the in-cluster address of the Prometheus that
// DeployPrometheus creates in namespace ns (through the cluster DNS and
// kube-proxy).
func PrometheusURL(ns string) string { return "http://prometheus." + ns + ".svc:9090" }

// MetricsService is the headless Service DeployPrometheus puts in each
// namespace it scrapes: it selects every pod of the scenario charts
// (app.kubernetes.io/part-of=kmt) and names their container port
// "metrics", so the cluster DNS answers one SRV record per pod
// (_metrics._tcp.<MetricsService>.<ns>.svc) with the pod's address and
// metrics port. Debian's prometheus 2.42 is built without Kubernetes
// service discovery (kubernetes_sd_configs is "field not found"), and the
// node has no prometheus-operator, so DNS discovery of this Service does
// what the charts' ServiceMonitors do on a full cluster.
const MetricsService = "kmt-metrics"

// chartPodLabels select the pods of every scenario chart.
var chartPodLabels = map[string]string{"app.kubernetes.io/part-of": "kmt"}

// metricsService is MetricsService in ns. Not-ready pods are published
// too: a validator is scraped from its start, not from its readiness.
func metricsService(ns string) *corev1.Service {
	svc := service(metav1.ObjectMeta{Name: MetricsService, Namespace: ns}, chartPodLabels, tcpPort("metrics", 9090, intstr.FromString("metrics")))
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	svc.Spec.PublishNotReadyAddresses = true
	return svc
}

// HostMetricsAddr is where a kmt process on this machine (not in a pod)
// serves its metrics for the Prometheus in the cluster to scrape: the
// bridge address, which pods reach. A validator run locally beside the
// cluster's (kmt validate --metrics-addr HostMetricsAddr) gets its PromQL
// assertions evaluated by the same Prometheus as the in-cluster one.
const HostMetricsAddr = BridgeIP + ":19090"

// prometheusConfig scrapes the pods MetricsService finds in namespaces
// (every 2 s, asking the cluster DNS again every 2 s, so a pod that
// lives for seconds is scraped), labelling each series with its
// namespace as a ServiceMonitor would, and HostMetricsAddr (down unless
// a local kmt process serves it).
func prometheusConfig(namespaces []string) string {
	names := ""
	for _, ns := range namespaces {
		names += fmt.Sprintf("%q, ", "_metrics._tcp."+MetricsService+"."+ns+".svc."+ClusterDomain)
	}
	return fmt.Sprintf(`global:
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
  - job_name: kmt-pods
    dns_sd_configs:
      - type: SRV
        refresh_interval: 2s
        names: [%s]
    relabel_configs:
      - source_labels: [__meta_dns_name]
        regex: '_metrics\._tcp\.%s\.([^.]+)\.svc\..*'
        target_label: namespace
  - job_name: kmt-host
    static_configs:
      - targets: [%q]
        labels:
          namespace: host
`, names[:len(names)-2], MetricsService, HostMetricsAddr)
}

// DeployPrometheus runs Prometheus (PrometheusImage, imported first) in
// namespace ns as a one-replica Deployment with a Service, scraping the
// chart pods of scrapeNamespaces (MetricsService in each), and returns
// once the objects exist; use WaitDeploymentReady or poll PrometheusURL.
func DeployPrometheus(ctx context.Context, cs kubernetes.Interface, ns string, scrapeNamespaces []string) error {
	const name = "prometheus"
	labels := map[string]string{"app.kubernetes.io/name": name}
	meta := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	objs := []metav1.Object{
		&corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"prometheus.yml": prometheusConfig(scrapeNamespaces)}},
		deployment(meta, prometheusPod(name)),
		service(meta, labels, tcpPort("web", 9090, intstr.FromInt32(9090))),
	}
	for _, sns := range scrapeNamespaces {
		objs = append(objs, metricsService(sns))
	}
	return createObjects(ctx, cs, "prometheus", objs...)
}

// prometheusPod runs Prometheus with the configuration of ConfigMap name
// and its data in a scratch volume.
func prometheusPod(name string) corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "prometheus", Image: PrometheusImage, ImagePullPolicy: corev1.PullNever,
			Args: []string{"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus/data", "--web.listen-address=:9090"},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/prometheus"},
				{Name: "data", MountPath: "/prometheus"},
			},
			ReadinessProbe: httpReadiness("/-/ready", 9090),
		}},
		Volumes: []corev1.Volume{configMapVolume("config", name), emptyDirVolume("data")},
	}
}
