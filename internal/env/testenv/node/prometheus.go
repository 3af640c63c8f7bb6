package node

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
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

// prometheusConfig scrapes every pod container port named "metrics" in
// namespaces (the scenario charts' loadgen, validator and agent), found
// through the API server (kubernetes_sd with the pod's service account):
// the node has no prometheus-operator, so the charts' ServiceMonitors are
// off and this does their job.
func prometheusConfig(namespaces []string) string {
	list := ""
	for _, ns := range namespaces {
		list += fmt.Sprintf("%q, ", ns)
	}
	return fmt.Sprintf(`global:
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
  - job_name: kmt-pods
    kubernetes_sd_configs:
      - role: pod
        namespaces:
          names: [%s]
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_container_port_name]
        action: keep
        regex: metrics
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
`, list[:len(list)-2])
}

// DeployPrometheus runs Prometheus (PrometheusImage, imported first) in
// namespace ns as a one-replica Deployment with a Service, scraping the
// pods of scrapeNamespaces, and returns once the Deployment exists; use
// WaitPodReady on its pod or poll PrometheusURL.
func DeployPrometheus(ctx context.Context, cs kubernetes.Interface, ns string, scrapeNamespaces []string) error {
	const name = "prometheus"
	labels := map[string]string{"app.kubernetes.io/name": name}
	meta := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	creates := []func() error{
		func() error {
			_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: "kmt-prometheus"},
				Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "kmt-prometheus"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "kmt-prometheus"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"prometheus.yml": prometheusConfig(scrapeNamespaces)}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, prometheusDeployment(meta), metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
				ObjectMeta: meta,
				Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "web", Port: 9090, TargetPort: intstr.FromInt32(9090)}}},
			}, metav1.CreateOptions{})
			return err
		},
	}
	for _, create := range creates {
		if err := create(); err != nil {
			return fmt.Errorf("prometheus: %w", err)
		}
	}
	return nil
}

func prometheusDeployment(meta metav1.ObjectMeta) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: meta.Labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: meta.Labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: meta.Name,
					Containers: []corev1.Container{{
						Name: "prometheus", Image: PrometheusImage, ImagePullPolicy: corev1.PullNever,
						Args: []string{"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus/data", "--web.listen-address=:9090"},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: "/etc/prometheus"},
							{Name: "data", MountPath: "/prometheus"},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/-/ready", Port: intstr.FromInt32(9090)}},
							PeriodSeconds: 2,
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: meta.Name}}}},
						{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
}
