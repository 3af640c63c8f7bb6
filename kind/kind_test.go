// Package kind_test checks what `make kind-up` / `kind-run` use, without a
// container engine: the kind configs through kind's own config types, the
// pinned versions, the Strimzi manifests' structure and the fields the
// scripts rely on, the Helm values, the prometheus-operator objects against
// their CRD schemas on a real API server, and the scripts' own logic.
package kind_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func versions(t *testing.T) map[string]string {
	t.Helper()
	v := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, "versions.env")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(val, " \"'$") {
			t.Fatalf("versions.env line %q: want KEY=value with no spaces, quotes or expansions (make and bash both read it)", line)
		}
		v[k] = val
	}
	return v
}

func TestClusterConfigs(t *testing.T) {
	var nets []*net.IPNet
	var netNames []string
	for _, tc := range []struct{ file, name, pod, svc string }{
		{"source.yaml", "kmt-source", "10.10.0.0/16", "10.11.0.0/16"},
		{"target.yaml", "kmt-target", "10.20.0.0/16", "10.21.0.0/16"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var c v1alpha4.Cluster
			if err := yaml.UnmarshalStrict([]byte(readFile(t, tc.file)), &c); err != nil {
				t.Fatalf("%s does not parse as a kind v1alpha4 Cluster: %v", tc.file, err)
			}
			v1alpha4.SetDefaultsCluster(&c)
			if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
				t.Fatalf("kind/apiVersion = %s %s", c.Kind, c.APIVersion)
			}
			// lib.sh derives the kube context as kind-<name> and the node
			// container as <name>-control-plane.
			if c.Name != tc.name {
				t.Fatalf("name = %q, want %q (the scripts use context kind-%s)", c.Name, tc.name, tc.name)
			}
			if c.Networking.PodSubnet != tc.pod || c.Networking.ServiceSubnet != tc.svc {
				t.Fatalf("subnets = %s %s, want %s %s", c.Networking.PodSubnet, c.Networking.ServiceSubnet, tc.pod, tc.svc)
			}
			if c.Networking.DisableDefaultCNI || c.Networking.IPFamily != v1alpha4.IPv4Family {
				t.Fatalf("networking %+v: want kind's default CNI on IPv4", c.Networking)
			}
			// Reachability between the clusters relies on both nodes being on
			// kind's docker network; the API server stays on loopback.
			if c.Networking.APIServerAddress != "127.0.0.1" {
				t.Fatalf("apiServerAddress = %s, want loopback", c.Networking.APIServerAddress)
			}
			if len(c.Nodes) != 1 || c.Nodes[0].Role != v1alpha4.ControlPlaneRole {
				t.Fatalf("nodes = %+v, want one control-plane (node_ip in lib.sh reads <name>-control-plane)", c.Nodes)
			}
			for _, s := range []string{c.Networking.PodSubnet, c.Networking.ServiceSubnet} {
				_, n, err := net.ParseCIDR(s)
				if err != nil {
					t.Fatal(err)
				}
				nets = append(nets, n)
				netNames = append(netNames, tc.file+" "+s)
			}
		})
	}
	// No two subnets (pods, services, of either cluster) may overlap, or a
	// NetworkChaos externalTarget and cross-cluster routes are ambiguous.
	// Docker's default bridge ranges (172.16/12) must stay clear too.
	_, docker, _ := net.ParseCIDR("172.16.0.0/12")
	for i := range nets {
		if nets[i].Contains(docker.IP) || docker.Contains(nets[i].IP) {
			t.Errorf("%s overlaps docker's 172.16.0.0/12", netNames[i])
		}
		for j := i + 1; j < len(nets); j++ {
			if nets[i].Contains(nets[j].IP) || nets[j].Contains(nets[i].IP) {
				t.Errorf("%s overlaps %s", netNames[i], netNames[j])
			}
		}
	}
	if len(nets) != 4 {
		t.Fatalf("checked %d subnets, want 4", len(nets))
	}
}

func TestVersionsPinned(t *testing.T) {
	v := versions(t)
	semver := regexp.MustCompile(`^v?\d+\.\d+\.\d+$`)
	for _, k := range []string{"KIND_VERSION", "KUBECTL_MIN_VERSION", "HELM_MIN_VERSION", "STRIMZI_VERSION", "KAFKA_VERSION", "CHAOS_MESH_VERSION", "KUBE_PROMETHEUS_STACK_VERSION"} {
		if !semver.MatchString(v[k]) {
			t.Errorf("%s = %q, want an exact version (x.y.z), not a range or latest", k, v[k])
		}
	}
	// The node image is pinned by digest and is the default of the kind
	// release go.mod uses, so config types and node image agree.
	if v["KIND_NODE_IMAGE"] != defaults.Image {
		t.Errorf("KIND_NODE_IMAGE = %q, want kind's own default for its library version: %q", v["KIND_NODE_IMAGE"], defaults.Image)
	}
	if !strings.Contains(v["KIND_NODE_IMAGE"], "@sha256:") {
		t.Errorf("KIND_NODE_IMAGE %q is not pinned by digest", v["KIND_NODE_IMAGE"])
	}
	gomod := readFile(t, "../go.mod")
	if !strings.Contains(gomod, "sigs.k8s.io/kind "+v["KIND_VERSION"]) {
		t.Errorf("KIND_VERSION %s differs from the sigs.k8s.io/kind version in go.mod", v["KIND_VERSION"])
	}
	for _, k := range []string{"CHAOS_MESH_CHART_REPO", "KPS_CHART_REPO"} {
		if !strings.HasPrefix(v[k], "https://") {
			t.Errorf("%s = %q, want an https chart repository", k, v[k])
		}
	}
	// Strimzi's documented route is its OCI registry (strimzi.io/charts is
	// deprecated); 0.45.0 does not start on Kubernetes >= 1.33 (#11386) and
	// 1.0 no longer serves the v1beta2 API of kind/manifests.
	if !strings.HasPrefix(v["STRIMZI_CHART"], "oci://") {
		t.Errorf("STRIMZI_CHART = %q, want Strimzi's OCI chart", v["STRIMZI_CHART"])
	}
	if v["STRIMZI_VERSION"] == "0.45.0" || !strings.HasPrefix(v["STRIMZI_VERSION"], "0.") {
		t.Errorf("STRIMZI_VERSION = %s: 0.45.0 fails on the kind node's Kubernetes; 1.x dropped kafka.strimzi.io/v1beta2", v["STRIMZI_VERSION"])
	}
	if !strings.HasPrefix(v["CHAOS_MESH_VERSION"], "2.8.") {
		t.Errorf("CHAOS_MESH_VERSION = %s, want the 2.8 line (tested upstream on Kubernetes 1.33-1.35)", v["CHAOS_MESH_VERSION"])
	}
}

// render does what lib.sh's render does: __KEY__ -> value.
func render(s string, kv map[string]string) string {
	for k, v := range kv {
		s = strings.ReplaceAll(s, "__"+k+"__", v)
	}
	return s
}

func decodeAll(t *testing.T, s string) []*unstructured.Unstructured {
	t.Helper()
	if m := regexp.MustCompile(`__[A-Z_]+__`).FindString(s); m != "" {
		t.Fatalf("placeholder %s is left after rendering", m)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(s), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("decode: %v", err)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

// num reads a YAML number (decoded through JSON as float64, or int64).
func num(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return -1
}

func byKind(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	return nil
}

func TestStrimziKafkaManifest(t *testing.T) {
	raw := readFile(t, "manifests/kafka.yaml")
	up := readFile(t, "up.sh")
	// Every placeholder in the manifest is filled by up.sh's render call.
	for _, ph := range regexp.MustCompile(`__([A-Z_]+)__`).FindAllStringSubmatch(raw, -1) {
		if !strings.Contains(up, ph[1]+"=") {
			t.Errorf("kafka.yaml placeholder __%s__ is not passed by up.sh", ph[1])
		}
	}
	for _, cluster := range []string{"source", "target"} {
		objs := decodeAll(t, render(raw, map[string]string{"CLUSTER": cluster, "ADVERTISED_HOST": "172.18.0.2", "KAFKA_VERSION": "3.9.0"}))
		pool, kafka, metrics := byKind(objs, "KafkaNodePool"), byKind(objs, "Kafka"), byKind(objs, "ConfigMap")
		if pool == nil || kafka == nil || metrics == nil {
			t.Fatalf("want a KafkaNodePool, a Kafka and a metrics ConfigMap, got %d objects", len(objs))
		}
		for _, o := range objs {
			if o.GetAPIVersion() != "v1" && o.GetAPIVersion() != "kafka.strimzi.io/v1beta2" {
				t.Errorf("%s apiVersion %s", o.GetKind(), o.GetAPIVersion())
			}
			if o.GetNamespace() != "kafka" {
				t.Errorf("%s namespace %q, want kafka (Strimzi watches only it; up.sh sets watchNamespaces={kafka})", o.GetKind(), o.GetNamespace())
			}
		}
		// up.sh waits on kafka/<cluster>; run.sh points at <cluster>-kafka-bootstrap.
		if kafka.GetName() != cluster || pool.GetLabels()["strimzi.io/cluster"] != cluster {
			t.Errorf("Kafka %q / pool label %q, want %q", kafka.GetName(), pool.GetLabels()["strimzi.io/cluster"], cluster)
		}
		if a := kafka.GetAnnotations(); a["strimzi.io/kraft"] != "enabled" || a["strimzi.io/node-pools"] != "enabled" {
			t.Errorf("Kafka annotations %v: want KRaft and node pools enabled", a)
		}
		roles, _, _ := unstructured.NestedStringSlice(pool.Object, "spec", "roles")
		if strings.Join(roles, ",") != "controller,broker" {
			t.Errorf("node pool roles %v, want controller and broker (KRaft, no ZooKeeper)", roles)
		}
		replicasV, _, _ := unstructured.NestedFieldNoCopy(pool.Object, "spec", "replicas")
		replicas := num(replicasV)
		listeners, _, _ := unstructured.NestedSlice(kafka.Object, "spec", "kafka", "listeners")
		var plain, external map[string]any
		for _, l := range listeners {
			m := l.(map[string]any)
			switch m["name"] {
			case "plain":
				plain = m
			case "external":
				external = m
			}
		}
		if plain == nil || num(plain["port"]) != 9092 || plain["tls"] != false || plain["type"] != "internal" {
			t.Errorf("plain listener %v: run.sh and MirrorMaker 2 use <cluster>-kafka-bootstrap.kafka.svc:9092 without TLS", plain)
		}
		if external == nil || external["type"] != "nodeport" || external["tls"] != false {
			t.Fatalf("external listener %v: want a plain NodePort listener the other cluster can route to", external)
		}
		bootPortV, _, _ := unstructured.NestedFieldNoCopy(external, "configuration", "bootstrap", "nodePort")
		bootPort := num(bootPortV)
		if bootPort != 32100 || !strings.Contains(up, ":32100") || !strings.Contains(readFile(t, "run.sh"), ":32100") {
			t.Errorf("bootstrap nodePort %d: up.sh and run.sh dial <source node IP>:32100", bootPort)
		}
		brokers, _, _ := unstructured.NestedSlice(external, "configuration", "brokers")
		if int64(len(brokers)) != replicas {
			t.Errorf("%d broker overrides for %d nodes: every broker must advertise the node IP", len(brokers), replicas)
		}
		ports := map[int64]bool{bootPort: true}
		for i, b := range brokers {
			m := b.(map[string]any)
			p := num(m["nodePort"])
			if num(m["broker"]) != int64(i) || m["advertisedHost"] != "172.18.0.2" || p < 30000 || p > 32767 || ports[p] {
				t.Errorf("broker override %v: want broker %d advertising the node IP on a unique NodePort in 30000-32767", m, i)
			}
			ports[p] = true
		}
		ref, _, _ := unstructured.NestedString(kafka.Object, "spec", "kafka", "metricsConfig", "valueFrom", "configMapKeyRef", "name")
		key, _, _ := unstructured.NestedString(kafka.Object, "spec", "kafka", "metricsConfig", "valueFrom", "configMapKeyRef", "key")
		if ref != metrics.GetName() {
			t.Errorf("metricsConfig refers to ConfigMap %q, the manifest has %q", ref, metrics.GetName())
		}
		if _, ok, _ := unstructured.NestedString(metrics.Object, "data", key); !ok {
			t.Errorf("metrics ConfigMap lacks key %q", key)
		}
	}
}

func TestMirrorMaker2Manifest(t *testing.T) {
	raw := readFile(t, "manifests/mirrormaker2.yaml")
	up := readFile(t, "up.sh")
	for _, ph := range regexp.MustCompile(`__([A-Z_]+)__`).FindAllStringSubmatch(raw, -1) {
		if !strings.Contains(up, ph[1]+"=") {
			t.Errorf("mirrormaker2.yaml placeholder __%s__ is not passed by up.sh", ph[1])
		}
	}
	objs := decodeAll(t, render(raw, map[string]string{"SOURCE_BOOTSTRAP": "172.18.0.2:32100", "KAFKA_VERSION": "3.9.0", "TOPICS": `orders|kmt-\d+.*`}))
	mm := byKind(objs, "KafkaMirrorMaker2")
	if mm == nil || mm.GetNamespace() != "kafka" {
		t.Fatalf("want a KafkaMirrorMaker2 in namespace kafka, got %v", objs)
	}
	if mm.GetName() != "mirror" || !strings.Contains(up, "kafkamirrormaker2/mirror") {
		t.Errorf("MM2 name %q: up.sh waits on kafkamirrormaker2/mirror", mm.GetName())
	}
	clusters, _, _ := unstructured.NestedSlice(mm.Object, "spec", "clusters")
	alias := map[string]string{}
	for _, c := range clusters {
		m := c.(map[string]any)
		alias[m["alias"].(string)] = m["bootstrapServers"].(string)
	}
	connect, _, _ := unstructured.NestedString(mm.Object, "spec", "connectCluster")
	if alias["source"] != "172.18.0.2:32100" || alias["target"] != "target-kafka-bootstrap.kafka.svc:9092" || connect != "target" {
		t.Errorf("clusters %v connect %q: want source via its NodePort, target local, Connect running on the target", alias, connect)
	}
	mirrors, _, _ := unstructured.NestedSlice(mm.Object, "spec", "mirrors")
	if len(mirrors) != 1 {
		t.Fatalf("mirrors = %v", mirrors)
	}
	m := mirrors[0].(map[string]any)
	if m["sourceCluster"] != "source" || m["targetCluster"] != "target" || m["topicsPattern"] != `orders|kmt-\d+.*` {
		t.Errorf("mirror %v: want source -> target for the test topics", m)
	}
	if cfg, _ := m["checkpointConnector"].(map[string]any); cfg == nil {
		t.Errorf("no checkpoint connector")
	}
}

func TestHelmValues(t *testing.T) {
	for _, tc := range []struct {
		file string
		path []string
		want any
	}{
		{"values/chaos-mesh.yaml", []string{"chaosDaemon", "runtime"}, "containerd"},
		{"values/chaos-mesh.yaml", []string{"chaosDaemon", "socketPath"}, "/run/containerd/containerd.sock"},
		{"values/kube-prometheus-stack.yaml", []string{"prometheus", "prometheusSpec", "serviceMonitorSelectorNilUsesHelmValues"}, false},
		{"values/kube-prometheus-stack.yaml", []string{"prometheus", "prometheusSpec", "podMonitorSelectorNilUsesHelmValues"}, false},
		{"values/kube-prometheus-stack.yaml", []string{"prometheus", "prometheusSpec", "ruleSelectorNilUsesHelmValues"}, false},
	} {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(readFile(t, tc.file)), &v); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		got, ok, err := unstructured.NestedFieldNoCopy(v, tc.path...)
		if err != nil || !ok || got != tc.want {
			t.Errorf("%s %s = %v (found %v), want %v", tc.file, strings.Join(tc.path, "."), got, ok, tc.want)
		}
	}
	up := readFile(t, "up.sh")
	for _, want := range []string{"values/chaos-mesh.yaml", "values/kube-prometheus-stack.yaml", `--version "$CHAOS_MESH_VERSION"`, `--version "$KUBE_PROMETHEUS_STACK_VERSION"`, `--version "$STRIMZI_VERSION"`} {
		if !strings.Contains(up, want) {
			t.Errorf("up.sh does not use %s", want)
		}
	}
}

// TestManifestsOnAPIServer applies everything kind-up applies (Kafka,
// KafkaNodePool, KafkaMirrorMaker2 rendered by lib.sh's own renderer with
// the default topic pattern, the metrics ConfigMap, the PodMonitor) to a
// real API server carrying the Strimzi CRDs at the pinned version and the
// prometheus-operator CRDs, so their schemas judge the manifests.
func TestManifestsOnAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver (internal/env/testenv)")
	}
	if v := versions(t)["STRIMZI_VERSION"]; v != testenv.StrimziVersion {
		t.Fatalf("kind pins Strimzi %s but internal/env/testenv holds the CRDs of %s: replace them", v, testenv.StrimziVersion)
	}
	e := testenv.Start(t, testenv.Options{CRDs: true, StrimziCRDs: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kafka"}}); err != nil {
		t.Fatal(err)
	}
	v := versions(t)
	var objs []*unstructured.Unstructured
	for _, c := range []string{"source", "target"} {
		out, err := bash(t, nil, "source ./lib.sh && render manifests/kafka.yaml CLUSTER="+c+" ADVERTISED_HOST=192.168.207.3 KAFKA_VERSION="+v["KAFKA_VERSION"])
		if err != nil {
			t.Fatalf("render kafka.yaml: %v\n%s", err, out)
		}
		for _, o := range decodeAll(t, out) {
			if c == "target" && o.GetKind() == "ConfigMap" {
				continue // one per namespace; kind has one per cluster
			}
			if c == "target" && o.GetKind() == "KafkaNodePool" {
				o.SetName("dual-target") // two clusters' pools share a namespace here only
			}
			objs = append(objs, o)
		}
	}
	out, err := bash(t, nil, "source ./lib.sh && render manifests/mirrormaker2.yaml SOURCE_BOOTSTRAP=192.168.207.3:32100 KAFKA_VERSION="+v["KAFKA_VERSION"]+" TOPICS='orders|kmt-.*'")
	if err != nil {
		t.Fatalf("render mirrormaker2.yaml: %v\n%s", err, out)
	}
	objs = append(objs, decodeAll(t, out)...)
	objs = append(objs, decodeAll(t, readFile(t, "manifests/podmonitors.yaml"))...)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatalf("the API server rejected %s/%s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	if kinds["Kafka"] != 2 || kinds["KafkaNodePool"] != 2 || kinds["KafkaMirrorMaker2"] != 1 || kinds["PodMonitor"] != 1 {
		t.Fatalf("applied %v", kinds)
	}
	// The schemas are in force: the same objects with a wrong field are refused.
	for _, tc := range []struct {
		kind  string
		value any
		path  []string
	}{
		{"PodMonitor", "not-a-list", []string{"spec", "podMetricsEndpoints"}},
		{"Kafka", "sideways", []string{"spec", "kafka", "listeners"}},
		{"KafkaMirrorMaker2", "many", []string{"spec", "replicas"}},
		{"KafkaNodePool", []any{"gateway"}, []string{"spec", "roles"}},
	} {
		bad := byKind(objs, tc.kind).DeepCopy()
		bad.SetName("bad")
		bad.SetResourceVersion("")
		_ = unstructured.SetNestedField(bad.Object, tc.value, tc.path...)
		if err := e.Client.Create(ctx, bad); err == nil {
			t.Errorf("a %s with %s = %v was accepted: its CRD schema is not in force, so the check above proves nothing", tc.kind, strings.Join(tc.path, "."), tc.value)
		}
	}
}

func bash(t *testing.T, env []string, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestScripts(t *testing.T) {
	for _, f := range []string{"lib.sh", "up.sh", "down.sh", "run.sh"} {
		src := readFile(t, f)
		if !strings.Contains(src, "\nset -euo pipefail\n") {
			t.Errorf("%s lacks set -euo pipefail", f)
		}
		if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s: bash -n: %v %s", f, err, out)
		}
	}
	mk := readFile(t, "kind.mk")
	for _, target := range []string{"kind-up:", "kind-down:", "kind-run:", "kind-check:"} {
		if !strings.Contains(mk, "\n"+target) {
			t.Errorf("kind.mk lacks target %s", target)
		}
	}
	for _, tc := range []struct {
		a, b string
		ge   bool
	}{
		{"v0.33.0", "v0.33.0", true}, {"v0.33.1", "v0.33.0", true}, {"v0.9.0", "v0.33.0", false},
		{"v1.32.4-dispatcher", "v1.30.0", true}, {"3.9", "3.10", false},
	} {
		_, err := bash(t, nil, "source ./lib.sh && version_ge "+tc.a+" "+tc.b)
		if (err == nil) != tc.ge {
			t.Errorf("version_ge %s %s = %v, want %v", tc.a, tc.b, err == nil, tc.ge)
		}
	}
	// The renderer takes values literally: the default topic pattern holds
	// sed's usual delimiter, and & \ / are special to sed replacements.
	out, err := bash(t, nil, `source ./lib.sh && render manifests/mirrormaker2.yaml SOURCE_BOOTSTRAP=1.2.3.4:32100 KAFKA_VERSION=3.9.0 TOPICS='orders|kmt-.*|a&b/\d'`)
	if err != nil || !strings.Contains(out, "bootstrapServers: 1.2.3.4:32100") || !strings.Contains(out, `topicsPattern: 'orders|kmt-.*|a&b/\d'`) {
		t.Errorf("render: err %v, output:\n%s", err, out)
	}
	if out, err := bash(t, nil, `source ./lib.sh && render manifests/mirrormaker2.yaml SOURCE_BOOTSTRAP=1.2.3.4:32100`); err == nil || !strings.Contains(out, "left a placeholder unfilled") {
		t.Errorf("render with a placeholder unfilled: err %v, output %q", err, out)
	}
	// Missing tools are named, with how to get them. PATH holds only bash's
	// own folder here, so kind, helm and docker are absent.
	bashPath, _ := exec.LookPath("bash")
	dir := t.TempDir()
	if err := os.Symlink(bashPath, dir+"/bash"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ check, want string }{
		{"check_kind", "kind is not installed (or not on PATH). Install kind v0.33.0: go install sigs.k8s.io/kind@v0.33.0"},
		{"check_helm", "helm is not installed (or not on PATH). Install Helm >= v3.14.0 (Helm 3 or 4)"},
		{"check_docker", "docker is not installed"},
	} {
		cmd := exec.Command(dir+"/bash", "-c", "source ./lib.sh && "+tc.check)
		cmd.Env = []string{"PATH=" + dir}
		b, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s without the tool: err %v, output %q, want %q", tc.check, err, b, tc.want)
		}
	}
	// run.sh refuses to start without a scenario, saying how to give one.
	out, err = bash(t, nil, "SCENARIO= bash ./run.sh")
	if err == nil || !strings.Contains(out, "SCENARIO is not set. Usage: make kind-run SCENARIO=<name>") {
		t.Errorf("run.sh without SCENARIO: err %v, output %q", err, out)
	}
}
