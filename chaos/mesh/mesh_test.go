package mesh

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func params() Params {
	p := DefaultParams()
	p.RunID = "golden"
	// Documentation addresses: the source node (as the mirror reaches the
	// brokers) and the target node (where the mirror's connections come from).
	p.PeerAddresses = []string{"192.0.2.1/32"}
	p.MirrorAddresses = []string{"192.0.2.2/32"}
	return p
}

// TestGolden renders every catalogue scenario and compares with
// testdata/<name>.golden; every printed Workflow is read back and passes
// Chaos Mesh's validation again.
func TestGolden(t *testing.T) {
	for _, name := range scenarios.KubernetesCatalogue() {
		t.Run(name, func(t *testing.T) {
			s, err := scenarios.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			objs, omitted, err := RenderPartial(s, params())
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := Print(&buf, objs); err != nil {
				t.Fatal(err)
			}
			for _, f := range omitted {
				if f.Kind.Supports(scenarios.BackendKubernetes) {
					t.Errorf("fault %s (%s) omitted although Kubernetes supports it", f.Name, f.Kind)
				}
				buf.WriteString("# omitted (no Kubernetes equivalent): " + f.Name + " (" + string(f.Kind) + ")\n")
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./chaos/mesh -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the rendering (go test ./chaos/mesh -update to accept):\n%s", golden, buf.String())
			}
			for _, doc := range strings.Split(buf.String(), "\n---\n") {
				if !strings.Contains(doc, "kind: Workflow") {
					continue
				}
				var wf v1alpha1.Workflow
				if err := yaml.UnmarshalStrict([]byte(doc), &wf); err != nil {
					t.Fatalf("printed workflow does not read back: %v", err)
				}
				if err := Validate(&wf); err != nil {
					t.Errorf("printed workflow fails Chaos Mesh validation: %v", err)
				}
			}
		})
	}
}

func fault(name string, kind scenarios.FaultKind, at, dur time.Duration, p scenarios.FaultParams) scenarios.Fault {
	return scenarios.Fault{Name: name, Kind: kind, At: scenarios.Duration(at), Duration: scenarios.Duration(dur), Params: p}
}

func scen(fs ...scenarios.Fault) *scenarios.Scenario {
	return &scenarios.Scenario{Metadata: scenarios.Metadata{Name: "t"}, Spec: scenarios.Spec{Timeline: fs}}
}

func tpl(t *testing.T, wf *v1alpha1.Workflow, name string) v1alpha1.Template {
	t.Helper()
	for _, x := range wf.Spec.Templates {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("workflow has no template %s", name)
	return v1alpha1.Template{}
}

func render(t *testing.T, s *scenarios.Scenario) map[Cluster]*v1alpha1.Workflow {
	t.Helper()
	objs, err := Render(s, params())
	if err != nil {
		t.Fatal(err)
	}
	out := map[Cluster]*v1alpha1.Workflow{}
	for c, os := range objs {
		if len(os) > 1 {
			t.Fatalf("%s: %d objects, want one Workflow", c, len(os))
		}
		for _, o := range os {
			out[c] = o.(*v1alpha1.Workflow)
		}
	}
	return out
}

func TestUnsupportedKindsAreErrors(t *testing.T) {
	for _, k := range scenarios.KindNames() {
		kind := scenarios.FaultKind(k)
		t.Run(k, func(t *testing.T) {
			p := scenarios.FaultParams{}
			if kind == scenarios.BrokerKill || kind == scenarios.BrokerPause || kind == scenarios.ClusterRestart {
				p.Cluster = "source"
			}
			_, err := Render(scen(fault("f1", kind, 0, time.Second, p)), params())
			var ue *scenarios.UnsupportedError
			if kind.Supports(scenarios.BackendKubernetes) {
				// Supported kinds may still fail on a missing required
				// param here, but never as unsupported.
				if errors.As(err, &ue) {
					t.Fatalf("supported kind reported unsupported: %v", err)
				}
				return
			}
			if !errors.As(err, &ue) || ue.Fault != "f1" || ue.Backend != scenarios.BackendKubernetes || !strings.Contains(err.Error(), "kubernetes") {
				t.Fatalf("err = %v, want an UnsupportedError naming f1 and the kubernetes backend", err)
			}
		})
	}
}

func TestEveryKubernetesKindRenders(t *testing.T) {
	ps := map[scenarios.FaultKind]scenarios.FaultParams{
		scenarios.BrokerKill:     {Cluster: "target", Brokers: 2},
		scenarios.ClusterRestart: {Cluster: "source"},
		scenarios.WANLatency:     {Latency: scenarios.Duration(80 * time.Millisecond), Jitter: scenarios.Duration(10 * time.Millisecond)},
		scenarios.WANBandwidth:   {BytesPerSecond: 1 << 20},
		scenarios.WANLoss:        {Percent: 5},
		scenarios.WANDuplicate:   {Percent: 2.5},
		scenarios.WANCorrupt:     {Percent: 1},
		scenarios.CPUStress:      {Workers: 2},
		scenarios.MemoryStress:   {Memory: "256MB"},
		scenarios.ClockSkew:      {TimeOffset: scenarios.Duration(5 * time.Minute)},
	}
	want := map[scenarios.FaultKind]struct {
		cluster Cluster
		typ     v1alpha1.TemplateType
		check   func(e *v1alpha1.EmbedChaos) string
	}{
		scenarios.BrokerKill: {Target, v1alpha1.TypePodChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.PodChaos.Action != v1alpha1.PodFailureAction || e.PodChaos.Mode != v1alpha1.FixedMode || e.PodChaos.Value != "2" || e.PodChaos.Selector.LabelSelectors["strimzi.io/cluster"] != "target" {
				return "want pod-failure of 2 target brokers"
			}
			return ""
		}},
		scenarios.ClusterRestart: {Source, v1alpha1.TypePodChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.PodChaos.Mode != v1alpha1.AllMode || e.PodChaos.Selector.LabelSelectors["strimzi.io/cluster"] != "source" {
				return "want every source broker"
			}
			return ""
		}},
		scenarios.MirrorKill: {Target, v1alpha1.TypePodChaos, func(e *v1alpha1.EmbedChaos) string {
			// A SIGKILL of the container (chaos-daemon), not a pod-kill: the
			// kubelet stops a deleted pod with SIGTERM first.
			if e.PodChaos.Action != v1alpha1.ContainerKillAction || len(e.PodChaos.ContainerNames) != 1 || e.PodChaos.ContainerNames[0] != "mirror-mirrormaker2" || e.PodChaos.Selector.LabelSelectors["strimzi.io/kind"] != "KafkaMirrorMaker2" {
				return "want a container-kill (SIGKILL) of the mirror container mirror-mirrormaker2"
			}
			return ""
		}},
		scenarios.MirrorRestart: {Target, v1alpha1.TypePodChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.PodChaos.Action != v1alpha1.PodKillAction || e.PodChaos.GracePeriod != 30 {
				return "want a graceful pod-kill"
			}
			return ""
		}},
		scenarios.PodFailure: {Target, v1alpha1.TypePodChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.PodChaos.Action != v1alpha1.PodFailureAction {
				return "want pod-failure"
			}
			return ""
		}},
		scenarios.ContainerKill: {Target, v1alpha1.TypePodChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.PodChaos.Action != v1alpha1.ContainerKillAction || len(e.PodChaos.ContainerNames) != 1 {
				return "want container-kill of the mirror container"
			}
			return ""
		}},
		scenarios.WANLatency: {Target, v1alpha1.TypeNetworkChaos, func(e *v1alpha1.EmbedChaos) string {
			n := e.NetworkChaos
			if n.Action != v1alpha1.DelayAction || n.Delay.Latency != "80ms" || n.Delay.Jitter != "10ms" || n.Direction != v1alpha1.To || n.ExternalTargets[0] != "192.0.2.1/32" || n.Target != nil || n.Selector.LabelSelectors["strimzi.io/kind"] != "KafkaMirrorMaker2" {
				return "want delay 80ms/10ms on the mirror towards the source brokers"
			}
			return ""
		}},
		scenarios.WANBandwidth: {Source, v1alpha1.TypeNetworkChaos, func(e *v1alpha1.EmbedChaos) string {
			n := e.NetworkChaos
			if n.Bandwidth.Rate != "1048576bps" || n.Bandwidth.Limit == 0 || n.Bandwidth.Buffer == 0 {
				return "want 1048576bps (tc bytes per second)"
			}
			// The data direction: fetch responses leave the source brokers.
			if n.Direction != v1alpha1.To || n.ExternalTargets[0] != "192.0.2.2/32" || n.Selector.LabelSelectors["strimzi.io/cluster"] != "source" || n.Mode != v1alpha1.AllMode {
				return "want every source broker's egress towards the mirror's address capped"
			}
			return ""
		}},
		scenarios.WANPartition: {Target, v1alpha1.TypeNetworkChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.NetworkChaos.Action != v1alpha1.PartitionAction || e.NetworkChaos.PartitionBehavior != "" {
				return "want partition with partitionBehavior cleared"
			}
			return ""
		}},
		scenarios.WANLoss: {Target, v1alpha1.TypeNetworkChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.NetworkChaos.Loss.Loss != "5" {
				return "want loss 5"
			}
			return ""
		}},
		scenarios.WANDuplicate: {Target, v1alpha1.TypeNetworkChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.NetworkChaos.Duplicate.Duplicate != "2.5" {
				return "want duplicate 2.5"
			}
			return ""
		}},
		scenarios.WANCorrupt: {Target, v1alpha1.TypeNetworkChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.NetworkChaos.Corrupt.Corrupt != "1" {
				return "want corrupt 1"
			}
			return ""
		}},
		scenarios.CPUStress: {Target, v1alpha1.TypeStressChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.StressChaos.Stressors.CPUStressor.Workers != 2 {
				return "want 2 cpu workers"
			}
			return ""
		}},
		scenarios.MemoryStress: {Target, v1alpha1.TypeStressChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.StressChaos.Stressors.MemoryStressor.Size != "256MB" {
				return "want 256MB"
			}
			return ""
		}},
		scenarios.ClockSkew: {Target, v1alpha1.TypeTimeChaos, func(e *v1alpha1.EmbedChaos) string {
			if e.TimeChaos.TimeOffset != "5m0s" {
				return "want a 5m offset"
			}
			return ""
		}},
	}
	for k := range scenarios.Kinds {
		if !k.Supports(scenarios.BackendKubernetes) {
			continue
		}
		if InCluster(k) {
			p := scenarios.FaultParams{Cluster: "source", Partitions: 12}
			if wfs := render(t, scen(fault("f1", k, 10*time.Second, 20*time.Second, p))); len(wfs) != 0 {
				t.Errorf("kind %s is done by kmt's in-cluster agent but rendered Chaos Mesh objects %v", k, wfs)
			}
			continue
		}
		w, ok := want[k]
		if !ok {
			t.Errorf("kind %s is supported on Kubernetes but has no test case", k)
			continue
		}
		t.Run(string(k), func(t *testing.T) {
			wfs := render(t, scen(fault("f1", k, 10*time.Second, 20*time.Second, ps[k])))
			wf := wfs[w.cluster]
			if wf == nil || (len(wfs) != 1 && k != scenarios.WANLatency) {
				t.Fatalf("want one workflow in %s, got %v", w.cluster, wfs)
			}
			step := tpl(t, wf, "fault-f1")
			if step.Type != w.typ || *step.Deadline != "20s" {
				t.Fatalf("step type %s deadline %v, want %s 20s", step.Type, *step.Deadline, w.typ)
			}
			if msg := w.check(step.EmbedChaos); msg != "" {
				t.Fatal(msg)
			}
			if l := wf.Labels; l[LabelCluster] != string(w.cluster) || l[LabelRun] != "golden" || l[LabelScenario] != "t" || l[LabelManagedBy] != "kmt" {
				t.Fatalf("labels %v", l)
			}
		})
	}
}

// TestWANLatencyBothDirections: the local WAN adds the one-way latency in
// each direction, so on Kubernetes both sides delay their egress across the
// WAN: the mirror towards the source brokers, the source brokers towards
// the mirror. One side only would add the latency once per round trip.
func TestWANLatencyBothDirections(t *testing.T) {
	lat := scenarios.FaultParams{Latency: scenarios.Duration(40 * time.Millisecond)}
	wfs := render(t, scen(fault("f1", scenarios.WANLatency, 0, time.Minute, lat)))
	if len(wfs) != 2 {
		t.Fatalf("workflows in %d clusters, want both", len(wfs))
	}
	src := tpl(t, wfs[Source], "fault-f1").NetworkChaos
	tgt := tpl(t, wfs[Target], "fault-f1").NetworkChaos
	if src.Delay.Latency != "40ms" || tgt.Delay.Latency != "40ms" {
		t.Fatalf("latency source %s target %s, want 40ms each way", src.Delay.Latency, tgt.Delay.Latency)
	}
	if src.ExternalTargets[0] != "192.0.2.2/32" || src.Selector.LabelSelectors["strimzi.io/cluster"] != "source" || src.Selector.LabelSelectors["strimzi.io/broker-role"] != "true" {
		t.Errorf("source side %+v: want the source brokers' egress towards the mirror's address", src)
	}
	if tgt.ExternalTargets[0] != "192.0.2.1/32" || tgt.Selector.LabelSelectors["strimzi.io/kind"] != "KafkaMirrorMaker2" {
		t.Errorf("target side %+v: want the mirror's egress towards the source brokers", tgt)
	}
}

// TestWANWithoutAddressesIsAnError: a WAN fault with no far-side address
// would select no traffic and pass as if it had happened.
func TestWANWithoutAddressesIsAnError(t *testing.T) {
	for _, tc := range []struct {
		kind  scenarios.FaultKind
		p     scenarios.FaultParams
		clear func(*Params)
		want  string
	}{
		{scenarios.WANPartition, scenarios.FaultParams{}, func(p *Params) { p.PeerAddresses = nil }, "PeerAddresses"},
		{scenarios.WANBandwidth, scenarios.FaultParams{BytesPerSecond: 1000}, func(p *Params) { p.MirrorAddresses = nil }, "MirrorAddresses"},
		{scenarios.WANLatency, scenarios.FaultParams{Latency: scenarios.Duration(time.Millisecond)}, func(p *Params) { p.MirrorAddresses = nil }, "MirrorAddresses"},
	} {
		p := params()
		tc.clear(&p)
		_, err := Render(scen(fault("f1", tc.kind, 0, time.Second, tc.p)), p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s without %s: err %v", tc.kind, tc.want, err)
		}
	}
}

func TestBrokerNodesSelectPods(t *testing.T) {
	wfs := render(t, scen(fault("f1", scenarios.BrokerKill, 0, time.Second, scenarios.FaultParams{Cluster: "source", Nodes: []int32{0, 2}})))
	pc := tpl(t, wfs[Source], "fault-f1").PodChaos
	if got := pc.Selector.Pods["kafka"]; strings.Join(got, ",") != "source-dual-0,source-dual-2" || pc.Mode != v1alpha1.AllMode {
		t.Fatalf("pods %v mode %s", got, pc.Mode)
	}
}

// TestTimelineShape checks the Serial/Suspend/Parallel layout and that
// every node has a deadline.
func TestTimelineShape(t *testing.T) {
	lat := scenarios.FaultParams{Latency: scenarios.Duration(50 * time.Millisecond)}
	for _, tc := range []struct {
		name     string
		faults   []scenarios.Fault
		children []string          // of the entry
		deadline map[string]string // template -> deadline
		parallel map[string][]string
	}{
		{
			name:     "sequential with gaps",
			faults:   []scenarios.Fault{fault("b", scenarios.MirrorKill, 50*time.Second, 5*time.Second, scenarios.FaultParams{}), fault("a", scenarios.WANLatency, 10*time.Second, 20*time.Second, lat)},
			children: []string{"wait-1", "fault-a", "wait-2", "fault-b"},
			deadline: map[string]string{"wait-1": "10s", "fault-a": "20s", "wait-2": "20s", "fault-b": "5s", "timeline": "1m25s"},
		},
		{
			name:     "touching windows stay serial",
			faults:   []scenarios.Fault{fault("a", scenarios.WANLatency, 0, 10*time.Second, lat), fault("b", scenarios.MirrorKill, 10*time.Second, 5*time.Second, scenarios.FaultParams{})},
			children: []string{"fault-a", "fault-b"},
			deadline: map[string]string{"timeline": "45s"},
		},
		{
			name:     "overlap becomes parallel",
			faults:   []scenarios.Fault{fault("a", scenarios.WANLatency, 20*time.Second, 60*time.Second, lat), fault("b", scenarios.MirrorKill, 30*time.Second, 10*time.Second, scenarios.FaultParams{}), fault("c", scenarios.WANPartition, 85*time.Second, 5*time.Second, scenarios.FaultParams{})},
			children: []string{"wait-1", "overlap-1", "wait-2", "fault-c"},
			parallel: map[string][]string{"overlap-1": {"fault-a", "branch-b"}, "branch-b": {"delay-b", "fault-b"}},
			deadline: map[string]string{"wait-1": "20s", "overlap-1": "1m30s", "delay-b": "10s", "fault-b": "10s", "branch-b": "50s", "wait-2": "5s", "fault-c": "5s"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wf := render(t, scen(tc.faults...))[Target]
			if wf == nil {
				t.Fatal("no target workflow")
			}
			entry := tpl(t, wf, wf.Spec.Entry)
			if entry.Type != v1alpha1.TypeSerial || strings.Join(entry.Children, ",") != strings.Join(tc.children, ",") {
				t.Fatalf("entry %s %v, want Serial %v", entry.Type, entry.Children, tc.children)
			}
			for n, d := range tc.deadline {
				if got := tpl(t, wf, n).Deadline; got == nil || *got != d {
					t.Errorf("%s deadline %v, want %s", n, got, d)
				}
			}
			for n, ch := range tc.parallel {
				if got := tpl(t, wf, n).Children; strings.Join(got, ",") != strings.Join(ch, ",") {
					t.Errorf("%s children %v, want %v", n, got, ch)
				}
			}
			for _, x := range wf.Spec.Templates {
				if x.Deadline == nil || *x.Deadline == "" {
					t.Errorf("template %s has no deadline", x.Name)
				}
			}
		})
	}
}

// TestValidateRejects proves the Chaos Mesh validation is in the path.
func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    scenarios.Fault
		p    func(*Params)
		want string
	}{
		{"bad memory size", fault("m", scenarios.MemoryStress, 0, time.Second, scenarios.FaultParams{Memory: "lots"}), nil, "size"},
		{"no container for container-kill", fault("c", scenarios.ContainerKill, 0, time.Second, scenarios.FaultParams{}), func(p *Params) { p.MirrorContainers = nil }, "Params.MirrorContainers"},
		// No silent fallback to a graceful pod-kill: the error names the value to set.
		{"no container for mirror-kill", fault("k", scenarios.MirrorKill, 0, time.Second, scenarios.FaultParams{}), func(p *Params) { p.MirrorContainers = nil }, "targets.mirror.container"},
		{"no peers", fault("w", scenarios.WANPartition, 0, time.Second, scenarios.FaultParams{}), func(p *Params) { p.PeerAddresses = nil }, "PeerAddresses"},
		{"broker fault without cluster", fault("b", scenarios.BrokerKill, 0, time.Second, scenarios.FaultParams{}), nil, "source or target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			if tc.p != nil {
				tc.p(&p)
			}
			_, err := Render(scen(tc.f), p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPrintLabelsEachDocument(t *testing.T) {
	objs, err := Render(scen(
		fault("a", scenarios.BrokerKill, 0, time.Second, scenarios.FaultParams{Cluster: "source"}),
		fault("b", scenarios.MirrorKill, 0, time.Second, scenarios.FaultParams{})), params())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Print(&buf, objs); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(buf.String(), "\n---\n")
	if len(docs) != 2 || !strings.HasPrefix(docs[0], "# cluster: source") || !strings.HasPrefix(docs[1], "# cluster: target") {
		t.Fatalf("documents:\n%s", buf.String())
	}
	for i, c := range []string{"source", "target"} {
		if !strings.Contains(docs[i], "kmt.dev/cluster: "+c) || strings.Contains(docs[i], "status:") {
			t.Errorf("document %d lacks the cluster label or carries status:\n%s", i, docs[i])
		}
	}
	// A mislabelled object is refused.
	objs[Source][0].SetLabels(map[string]string{LabelCluster: "target"})
	if err := Print(&bytes.Buffer{}, objs); err == nil {
		t.Fatal("Print accepted an object labelled for the other cluster")
	}
}
