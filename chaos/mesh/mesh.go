// Package mesh turns a scenario's fault timeline into Chaos Mesh objects:
// one Workflow per Kubernetes cluster (source, target), whose steps are
// typed PodChaos, NetworkChaos, StressChaos and TimeChaos specs from
// github.com/chaos-mesh/chaos-mesh/api.
//
// Mapping (scenario kind -> Chaos Mesh), and why:
//
//	broker-kill      PodChaos pod-failure on N broker pods (or the pods of the
//	                 given node ids): the brokers stay down for the whole window
//	                 and return when it ends, as on the local backend (a bare
//	                 pod-kill would be undone by Strimzi within seconds).
//	cluster-restart  PodChaos pod-failure on every broker pod of the cluster;
//	                 they restart on their persistent volumes at window end.
//	mirror-kill      PodChaos container-kill on the mirror container: the
//	                 chaos-daemon kills the container's task with SIGKILL
//	                 (containerd/CRI-O/docker kill), so the mirror gets no
//	                 SIGTERM, makes no final offset commit, and re-copies
//	                 from its last committed offsets. The kubelet restarts
//	                 the container in the same pod at once; the window only
//	                 bounds the step. Not pod-kill: that deletes the pod and
//	                 the kubelet stops the container with SIGTERM first (at
//	                 least 2 s before SIGKILL, even with gracePeriod 0), time
//	                 in which MirrorMaker 2 commits its offsets (seen on a
//	                 real node: 0 duplicates in two runs). Needs the mirror's
//	                 container name (Params.MirrorContainers); without it
//	                 Render fails rather than fall back to a graceful kill.
//	mirror-restart   PodChaos pod-kill with a grace period (SIGTERM, clean stop).
//	pod-failure      PodChaos pod-failure on the mirror pods.
//	container-kill   PodChaos container-kill on the mirror container (the
//	                 same SIGKILL as mirror-kill).
//	wan-latency      NetworkChaos delay in BOTH clusters, as the local WAN
//	                 adds the one-way latency in each direction: on the mirror
//	                 pods towards the source brokers (PeerAddresses) and on the
//	                 source broker pods towards the mirror (MirrorAddresses).
//	                 NetworkChaos shapes only the selected pods' egress
//	                 (direction "to"; externalTargets cannot be used with
//	                 "from" or "both", Chaos Mesh 2.8 networkchaos_webhook.go).
//	wan-bandwidth    NetworkChaos bandwidth (tbf) on the data direction: the
//	                 source broker pods' egress towards the mirror, where the
//	                 fetch responses flow (the mirror's own egress carries only
//	                 fetch requests, so a cap there never slows replication).
//	wan-loss, wan-duplicate, wan-corrupt, wan-partition
//	                 NetworkChaos on the mirror pods, direction "to",
//	                 externalTargets = the peer (source) brokers' addresses:
//	                 cross-cluster pod selectors cannot work, so each side is
//	                 shaped in its own cluster towards the other's address.
//	cpu-stress, memory-stress   StressChaos on the mirror container.
//	clock-skew       TimeChaos on the mirror container.
//
// Kinds Chaos Mesh cannot do (process pause, Kafka admin operations:
// broker-pause, mirror-pause, topic-add-partitions, topic-purge) are done by
// kmt's own in-cluster fault agent (internal/kube/agent); InCluster says
// which and Placements where. Kinds with no Kubernetes form at all
// (wan-reset, wan-stall) are a *scenarios.UnsupportedError from Render;
// RenderPartial skips them and reports which it left out.
//
// Timeline shape: the Workflow's entry is a Serial node. Faults that do not
// overlap in time follow each other, separated by Suspend nodes for the
// gaps. Faults whose windows overlap form one Parallel node whose branches
// are Serial [Suspend(offset), chaos]. Every node has a deadline: a chaos
// node's deadline is the fault's duration, so each fault ends by itself
// even if kmt dies; container nodes get their span plus ContainerSlack, so
// they never cut a child short when injection starts a little late.
package mesh

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Cluster is "source" or "target".
type Cluster string

// The two clusters.
const (
	Source Cluster = "source"
	Target Cluster = "target"
)

// Clusters in output order.
var Clusters = []Cluster{Source, Target}

// Labels kmt puts on every object.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kmt"
	LabelScenario  = "kmt.dev/scenario"
	LabelRun       = "kmt.dev/run"
	LabelCluster   = "kmt.dev/cluster"
)

// ContainerSlack is added to the deadline of Serial/Parallel nodes.
const ContainerSlack = 30 * time.Second

// KafkaCluster locates one Strimzi Kafka cluster's broker pods.
type KafkaCluster struct {
	Namespace string
	// BrokerLabels select the broker pods.
	BrokerLabels map[string]string
	// BrokerPodPrefix + node id is a broker pod's name (faults with nodes).
	BrokerPodPrefix string
}

// Params are the Kubernetes facts a scenario file does not hold. The
// defaults (DefaultParams) match kmt's kind setup: Strimzi Kafka clusters
// named source and target with a node pool named dual in namespace kafka,
// and a KafkaMirrorMaker2 named mirror in the target cluster.
type Params struct {
	Source, Target KafkaCluster
	// MirrorCluster is where the mirror runs (and where WAN faults are
	// injected): target for MirrorMaker 2.
	MirrorCluster   Cluster
	MirrorNamespace string
	MirrorLabels    map[string]string
	// MirrorContainers name the mirror container (mirror-kill and
	// container-kill, stress, clock skew).
	MirrorContainers []string
	// PeerAddresses are the IPs or CIDRs of the brokers on the far side of
	// the WAN (the source cluster's, seen from the mirror). Never assumed:
	// kind's docker network takes its IPv4 subnet from Docker's pools.
	PeerAddresses []string
	// MirrorAddresses are the IPs or CIDRs the mirror's connections come
	// from as the source brokers see them (kind: the target node's address,
	// kept by the NodePort's externalTrafficPolicy Local). Source-side WAN
	// shaping (latency's return half, the bandwidth cap) targets them.
	MirrorAddresses []string
	// Namespace is where the Workflows are created.
	Namespace string
	// RunID labels the objects (kmt.dev/run).
	RunID string
	// StartDelay is waited before the timeline's t=0 (e.g. while the load
	// generator's pod starts).
	StartDelay time.Duration
	// GracefulStop is the grace period of mirror-restart.
	GracefulStop time.Duration
}

// DefaultParams returns the kind-setup defaults.
func DefaultParams() Params {
	kc := func(name string) KafkaCluster {
		return KafkaCluster{
			Namespace: "kafka",
			BrokerLabels: map[string]string{
				"strimzi.io/cluster":     name,
				"strimzi.io/kind":        "Kafka",
				"strimzi.io/broker-role": "true",
			},
			// kind/manifests/kafka.yaml's node pool is "dual"; Strimzi
			// names pods <cluster>-<pool>-<node id>.
			BrokerPodPrefix: name + "-dual-",
		}
	}
	return Params{
		Source:          kc("source"),
		Target:          kc("target"),
		MirrorCluster:   Target,
		MirrorNamespace: "kafka",
		MirrorLabels: map[string]string{
			"strimzi.io/kind": "KafkaMirrorMaker2",
			"strimzi.io/name": "mirror-mirrormaker2",
		},
		MirrorContainers: []string{"mirror-mirrormaker2"},
		Namespace:        "kafka",
		RunID:            "manual",
		GracefulStop:     30 * time.Second,
	}
}

func (p Params) check() error {
	if p.MirrorCluster != Source && p.MirrorCluster != Target {
		return fmt.Errorf("mirror cluster %q must be source or target", p.MirrorCluster)
	}
	for _, a := range append(append([]string(nil), p.PeerAddresses...), p.MirrorAddresses...) {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				return fmt.Errorf("peer address %q is neither an IP nor a CIDR (e.g. 172.18.0.5 or 172.18.0.0/16)", a)
			}
		}
	}
	if p.StartDelay < 0 {
		return fmt.Errorf("start delay %s is negative: give 0 or more (how long to wait before the timeline's t=0)", p.StartDelay)
	}
	if p.Namespace == "" || p.MirrorNamespace == "" || p.Source.Namespace == "" || p.Target.Namespace == "" {
		return fmt.Errorf("namespaces must be set (Namespace %q, MirrorNamespace %q, source %q, target %q)", p.Namespace, p.MirrorNamespace, p.Source.Namespace, p.Target.Namespace)
	}
	if len(p.MirrorLabels) == 0 {
		return fmt.Errorf("mirror labels must be set, or every pod in the namespace would be a target")
	}
	return nil
}

func (p Params) kafka(c Cluster) KafkaCluster {
	if c == Source {
		return p.Source
	}
	return p.Target
}

// Render returns each cluster's objects (a Workflow, or nothing when the
// cluster has no fault). A fault the Kubernetes backend cannot perform is a
// *scenarios.UnsupportedError.
func Render(s *scenarios.Scenario, p Params) (map[Cluster][]client.Object, error) {
	out, omitted, err := RenderPartial(s, p)
	if err != nil {
		return nil, err
	}
	if len(omitted) > 0 {
		f := omitted[0]
		return nil, &scenarios.UnsupportedError{Fault: f.Name, Kind: f.Kind, Backend: scenarios.BackendKubernetes}
	}
	return out, nil
}

// RenderPartial is Render that leaves out the faults Kubernetes cannot
// perform and returns them, for charts that document the omission. Faults
// kmt's in-cluster agent performs (InCluster) are neither rendered nor
// omitted.
func RenderPartial(s *scenarios.Scenario, p Params) (map[Cluster][]client.Object, []scenarios.Fault, error) {
	if err := p.check(); err != nil {
		return nil, nil, err
	}
	per := map[Cluster][]scenarios.Fault{}
	var omitted []scenarios.Fault
	for _, f := range s.Spec.Timeline {
		if !f.Kind.Supports(scenarios.BackendKubernetes) {
			omitted = append(omitted, f)
			continue
		}
		if InCluster(f.Kind) {
			continue
		}
		cs, err := Placements(f, p)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range cs {
			per[c] = append(per[c], f)
		}
	}
	out := map[Cluster][]client.Object{Source: nil, Target: nil}
	for _, c := range Clusters {
		if len(per[c]) == 0 {
			continue
		}
		wf, err := workflow(s, p, c, per[c])
		if err != nil {
			return nil, nil, err
		}
		if err := Validate(wf); err != nil {
			return nil, nil, fmt.Errorf("scenario %s: the %s cluster's Workflow fails Chaos Mesh validation: %w", s.Metadata.Name, c, err)
		}
		out[c] = append(out[c], wf)
	}
	return out, omitted, nil
}

// InCluster reports whether kmt's own in-cluster agent performs a kind on
// Kubernetes (Chaos Mesh has no process pause and no Kafka admin
// operations).
func InCluster(k scenarios.FaultKind) bool {
	switch k {
	case scenarios.BrokerPause, scenarios.MirrorPause, scenarios.TopicAddPartitions, scenarios.TopicPurge:
		return true
	}
	return false
}

// farSide is the cluster across the WAN from the mirror.
func (p Params) farSide() Cluster {
	if p.MirrorCluster == Source {
		return Target
	}
	return Source
}

// Placements says in which clusters a fault acts: WAN latency in both, so
// each direction is delayed; a bandwidth cap where the data leaves; a purge
// pauses the mirror in its cluster and deletes records in the source.
func Placements(f scenarios.Fault, p Params) ([]Cluster, error) {
	switch f.Kind {
	case scenarios.BrokerKill, scenarios.ClusterRestart, scenarios.BrokerPause:
		switch Cluster(f.Params.Cluster) {
		case Source, Target:
			return []Cluster{Cluster(f.Params.Cluster)}, nil
		}
		return nil, fmt.Errorf("fault %q: cluster %q must be source or target", f.Name, f.Params.Cluster)
	case scenarios.WANLatency:
		return []Cluster{p.farSide(), p.MirrorCluster}, nil
	case scenarios.WANBandwidth:
		// A mirror in the target pulls: the data leaves the source brokers.
		if p.MirrorCluster == Target {
			return []Cluster{Source}, nil
		}
		return []Cluster{p.MirrorCluster}, nil
	case scenarios.TopicAddPartitions:
		return []Cluster{Source}, nil
	case scenarios.TopicPurge:
		if p.MirrorCluster == Source {
			return []Cluster{Source}, nil
		}
		return []Cluster{Source, p.MirrorCluster}, nil
	}
	return []Cluster{p.MirrorCluster}, nil
}

// WorkflowName names a scenario's Workflow in one cluster.
func WorkflowName(scenario string, c Cluster) string {
	return "kmt-" + scenario + "-" + string(c)
}

// Labels returns kmt's labels for an object of scenario in cluster c.
func Labels(scenario, run string, c Cluster) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedBy,
		LabelScenario:  scenario,
		LabelRun:       run,
		LabelCluster:   string(c),
	}
}

func deadline(d time.Duration) *string {
	s := d.String()
	return &s
}

type group struct {
	start, end time.Duration
	faults     []scenarios.Fault
}

// groups merges faults whose windows overlap (touching windows do not).
func groups(fs []scenarios.Fault) []group {
	fs = append([]scenarios.Fault(nil), fs...)
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].At != fs[j].At {
			return fs[i].At < fs[j].At
		}
		return fs[i].Name < fs[j].Name
	})
	var gs []group
	for _, f := range fs {
		if n := len(gs); n > 0 && f.At.D() < gs[n-1].end {
			g := &gs[n-1]
			g.faults = append(g.faults, f)
			g.end = max(g.end, f.End())
			continue
		}
		gs = append(gs, group{f.At.D(), f.End(), []scenarios.Fault{f}})
	}
	return gs
}

func workflow(s *scenarios.Scenario, p Params, c Cluster, fs []scenarios.Fault) (*v1alpha1.Workflow, error) {
	var tpls []v1alpha1.Template
	var entryChildren []string
	cursor := -p.StartDelay
	for i, g := range groups(fs) {
		if gap := g.start - cursor; gap > 0 {
			name := fmt.Sprintf("wait-%d", i+1)
			tpls = append(tpls, v1alpha1.Template{Name: name, Type: v1alpha1.TypeSuspend, Deadline: deadline(gap)})
			entryChildren = append(entryChildren, name)
		}
		cursor = g.end
		if len(g.faults) == 1 {
			t, err := chaosTemplate(g.faults[0], p, c)
			if err != nil {
				return nil, err
			}
			tpls = append(tpls, t)
			entryChildren = append(entryChildren, t.Name)
			continue
		}
		par := v1alpha1.Template{Name: fmt.Sprintf("overlap-%d", i+1), Type: v1alpha1.TypeParallel, Deadline: deadline(g.end - g.start + ContainerSlack)}
		for _, f := range g.faults {
			t, err := chaosTemplate(f, p, c)
			if err != nil {
				return nil, err
			}
			tpls = append(tpls, t)
			off := f.At.D() - g.start
			if off == 0 {
				par.Children = append(par.Children, t.Name)
				continue
			}
			wait := v1alpha1.Template{Name: "delay-" + f.Name, Type: v1alpha1.TypeSuspend, Deadline: deadline(off)}
			br := v1alpha1.Template{Name: "branch-" + f.Name, Type: v1alpha1.TypeSerial, Deadline: deadline(f.End() - g.start + ContainerSlack), Children: []string{wait.Name, t.Name}}
			tpls = append(tpls, wait, br)
			par.Children = append(par.Children, br.Name)
		}
		tpls = append(tpls, par)
		entryChildren = append(entryChildren, par.Name)
	}
	total := cursor + p.StartDelay
	entry := v1alpha1.Template{Name: "timeline", Type: v1alpha1.TypeSerial, Deadline: deadline(total + ContainerSlack), Children: entryChildren}
	wf := &v1alpha1.Workflow{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: v1alpha1.KindWorkflow},
		ObjectMeta: metav1.ObjectMeta{
			Name:      WorkflowName(s.Metadata.Name, c),
			Namespace: p.Namespace,
			Labels:    Labels(s.Metadata.Name, p.RunID, c),
			Annotations: map[string]string{
				"kmt.dev/description": fmt.Sprintf("fault timeline of scenario %s in the %s cluster; t=0 is %s after creation", s.Metadata.Name, c, p.StartDelay),
			},
		},
		Spec: v1alpha1.WorkflowSpec{Entry: entry.Name, Templates: append([]v1alpha1.Template{entry}, tpls...)},
	}
	return wf, nil
}

var netAction = map[scenarios.FaultKind]v1alpha1.NetworkChaosAction{
	scenarios.WANLatency: v1alpha1.DelayAction, scenarios.WANLoss: v1alpha1.LossAction,
	scenarios.WANDuplicate: v1alpha1.DuplicateAction, scenarios.WANCorrupt: v1alpha1.CorruptAction,
	scenarios.WANBandwidth: v1alpha1.BandwidthAction, scenarios.WANPartition: v1alpha1.PartitionAction,
}

func pct(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func (p Params) mirrorPods() v1alpha1.PodSelector {
	return v1alpha1.PodSelector{
		Selector: v1alpha1.PodSelectorSpec{GenericSelectorSpec: v1alpha1.GenericSelectorSpec{
			Namespaces:     []string{p.MirrorNamespace},
			LabelSelectors: copyMap(p.MirrorLabels),
		}},
		Mode: v1alpha1.AllMode,
	}
}

func (p Params) mirrorContainers() v1alpha1.ContainerSelector {
	return v1alpha1.ContainerSelector{PodSelector: p.mirrorPods(), ContainerNames: append([]string(nil), p.MirrorContainers...)}
}

func copyMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (p Params) brokers(c Cluster, f scenarios.Fault, all bool) v1alpha1.PodSelector {
	k := p.kafka(c)
	sel := v1alpha1.PodSelector{Selector: v1alpha1.PodSelectorSpec{GenericSelectorSpec: v1alpha1.GenericSelectorSpec{
		Namespaces:     []string{k.Namespace},
		LabelSelectors: copyMap(k.BrokerLabels),
	}}}
	switch {
	case all:
		sel.Mode = v1alpha1.AllMode
	case len(f.Params.Nodes) > 0:
		// Named pods: Chaos Mesh selects exactly these (labels still apply).
		var names []string
		for _, n := range f.Params.Nodes {
			names = append(names, k.BrokerPodPrefix+strconv.Itoa(int(n)))
		}
		sel.Selector.Pods = map[string][]string{k.Namespace: names}
		sel.Mode = v1alpha1.AllMode
	default:
		n := max(f.Params.Brokers, 1)
		sel.Mode = v1alpha1.FixedMode
		sel.Value = strconv.Itoa(n)
	}
	return sel
}

// wan shapes one direction of the WAN from cluster c: the mirror pods'
// egress towards the far side's brokers or, on the far side, the brokers'
// egress towards the mirror.
func (p Params) wan(f scenarios.Fault, c Cluster, action v1alpha1.NetworkChaosAction) (*v1alpha1.NetworkChaosSpec, error) {
	sel, to, what := p.mirrorPods(), p.PeerAddresses, "PeerAddresses (the far side's brokers as the mirror reaches them)"
	if c != p.MirrorCluster {
		sel, to, what = p.brokers(c, f, true), p.MirrorAddresses, "MirrorAddresses (where the mirror's connections come from, as the brokers see them)"
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("fault %q (%s) in the %s cluster: no %s: a WAN fault aimed at nothing would pass as if it had happened", f.Name, f.Kind, c, what)
	}
	return &v1alpha1.NetworkChaosSpec{
		PodSelector:     sel,
		Action:          action,
		Direction:       v1alpha1.To,
		ExternalTargets: append([]string(nil), to...),
	}, nil
}

// chaosTemplate is the workflow step of one fault; its deadline is the
// fault's duration (Chaos Mesh forbids a duration inside a workflow step).
func chaosTemplate(f scenarios.Fault, p Params, c Cluster) (v1alpha1.Template, error) {
	t := v1alpha1.Template{Name: "fault-" + f.Name, Deadline: deadline(f.Duration.D()), EmbedChaos: &v1alpha1.EmbedChaos{}}
	e := t.EmbedChaos
	pod := func(action v1alpha1.PodChaosAction, sel v1alpha1.PodSelector, containers []string, grace int64) {
		t.Type = v1alpha1.TypePodChaos
		e.PodChaos = &v1alpha1.PodChaosSpec{ContainerSelector: v1alpha1.ContainerSelector{PodSelector: sel, ContainerNames: containers}, Action: action, GracePeriod: grace}
	}
	net := func(spec *v1alpha1.NetworkChaosSpec) {
		t.Type = v1alpha1.TypeNetworkChaos
		e.NetworkChaos = spec
	}
	fp := f.Params
	switch f.Kind {
	case scenarios.BrokerKill:
		pod(v1alpha1.PodFailureAction, p.brokers(c, f, false), nil, 0)
	case scenarios.ClusterRestart:
		pod(v1alpha1.PodFailureAction, p.brokers(c, f, true), nil, 0)
	case scenarios.MirrorKill, scenarios.ContainerKill:
		if len(p.MirrorContainers) == 0 {
			return t, fmt.Errorf("fault %q (%s) is a SIGKILL of the mirror's container (PodChaos container-kill) and needs its name: set Params.MirrorContainers (the charts' value targets.mirror.container); a pod-kill would stop the mirror with SIGTERM first, not a hard kill", f.Name, f.Kind)
		}
		pod(v1alpha1.ContainerKillAction, p.mirrorPods(), append([]string(nil), p.MirrorContainers...), 0)
	case scenarios.MirrorRestart:
		pod(v1alpha1.PodKillAction, p.mirrorPods(), nil, int64(p.GracefulStop/time.Second))
	case scenarios.PodFailure:
		pod(v1alpha1.PodFailureAction, p.mirrorPods(), nil, 0)
	case scenarios.WANLatency, scenarios.WANLoss, scenarios.WANDuplicate, scenarios.WANCorrupt, scenarios.WANBandwidth, scenarios.WANPartition:
		s, err := p.wan(f, c, netAction[f.Kind])
		if err != nil {
			return t, err
		}
		switch f.Kind {
		case scenarios.WANLatency:
			s.TcParameter.Delay = &v1alpha1.DelaySpec{Latency: fp.Latency.String(), Jitter: fp.Jitter.String()}
		case scenarios.WANLoss:
			s.TcParameter.Loss = &v1alpha1.LossSpec{Loss: pct(fp.Percent)}
		case scenarios.WANDuplicate:
			s.TcParameter.Duplicate = &v1alpha1.DuplicateSpec{Duplicate: pct(fp.Percent)}
		case scenarios.WANCorrupt:
			s.TcParameter.Corrupt = &v1alpha1.CorruptSpec{Corrupt: pct(fp.Percent)}
		case scenarios.WANBandwidth:
			// tc's "bps" unit is bytes per second. The bucket holds 10 ms of
			// traffic (at least one 64 KiB chunk) and up to 2 s may queue.
			rate := fp.BytesPerSecond
			s.TcParameter.Bandwidth = &v1alpha1.BandwidthSpec{
				Rate:   strconv.FormatInt(rate, 10) + "bps",
				Buffer: uint32(min(max(rate/100, 65536), 1<<30)),
				Limit:  uint32(min(max(rate*2, 65536), 1<<31)),
			}
		}
		net(s)
	case scenarios.CPUStress:
		t.Type = v1alpha1.TypeStressChaos
		e.StressChaos = &v1alpha1.StressChaosSpec{ContainerSelector: p.mirrorContainers(), Stressors: &v1alpha1.Stressors{
			CPUStressor: &v1alpha1.CPUStressor{Stressor: v1alpha1.Stressor{Workers: max(fp.Workers, 1)}},
		}}
	case scenarios.MemoryStress:
		t.Type = v1alpha1.TypeStressChaos
		e.StressChaos = &v1alpha1.StressChaosSpec{ContainerSelector: p.mirrorContainers(), Stressors: &v1alpha1.Stressors{
			MemoryStressor: &v1alpha1.MemoryStressor{Stressor: v1alpha1.Stressor{Workers: 1}, Size: fp.Memory},
		}}
	case scenarios.ClockSkew:
		t.Type = v1alpha1.TypeTimeChaos
		e.TimeChaos = &v1alpha1.TimeChaosSpec{ContainerSelector: p.mirrorContainers(), TimeOffset: fp.TimeOffset.String()}
	default:
		return t, &scenarios.UnsupportedError{Fault: f.Name, Kind: f.Kind, Backend: scenarios.BackendKubernetes}
	}
	return t, nil
}

func init() {
	// Chaos Mesh's webhooks log through controller-runtime; without a
	// logger controller-runtime complains (and stalls) on first use.
	ctrllog.SetLogger(logr.Discard())
}

// Validate runs Chaos Mesh's own admission logic on a Workflow: Default()
// then ValidateCreate(), and the same for every chaos step as a standalone
// object (with the step's deadline as its duration), so both the workflow
// rules and each chaos kind's rules are enforced. Default() sets
// partitionBehavior, a field no released Chaos Mesh CRD has; it is cleared
// again (the behaviour it names, drop, is what every release does, and a
// Chaos Mesh that knows the field defaults it again on admission). Enums
// (action, mode, direction) are checked only by the CRD schema, which the
// chart tests exercise against a real API server.
func Validate(wf *v1alpha1.Workflow) error {
	ctx := context.Background()
	if err := wf.Default(ctx, wf); err != nil {
		return fmt.Errorf("defaulting workflow %s: %w", wf.Name, err)
	}
	// ValidateCreate defaults the embedded chaos again, in place.
	defer clearPartitionBehavior(wf)
	if _, err := wf.ValidateCreate(ctx, wf); err != nil {
		return fmt.Errorf("workflow %s: %w", wf.Name, err)
	}
	for _, t := range wf.Spec.Templates {
		if t.EmbedChaos == nil {
			continue
		}
		obj, err := standalone(t, wf.Namespace)
		if err != nil {
			return err
		}
		if err := obj.Default(ctx, obj); err != nil {
			return fmt.Errorf("step %s: defaulting: %w", t.Name, err)
		}
		if _, err := obj.ValidateCreate(ctx, obj); err != nil {
			return fmt.Errorf("step %s (%s): %w", t.Name, t.Type, err)
		}
	}
	return nil
}

// standalone builds the chaos object a workflow step would create.
func standalone(t v1alpha1.Template, ns string) (v1alpha1.InnerObject, error) {
	meta := metav1.ObjectMeta{Name: t.Name, Namespace: ns}
	e := t.EmbedChaos
	switch t.Type {
	case v1alpha1.TypePodChaos:
		s := *e.PodChaos.DeepCopy()
		s.Duration = t.Deadline
		return &v1alpha1.PodChaos{ObjectMeta: meta, Spec: s}, nil
	case v1alpha1.TypeNetworkChaos:
		s := *e.NetworkChaos.DeepCopy()
		s.Duration = t.Deadline
		return &v1alpha1.NetworkChaos{ObjectMeta: meta, Spec: s}, nil
	case v1alpha1.TypeStressChaos:
		s := *e.StressChaos.DeepCopy()
		s.Duration = t.Deadline
		return &v1alpha1.StressChaos{ObjectMeta: meta, Spec: s}, nil
	case v1alpha1.TypeTimeChaos:
		s := *e.TimeChaos.DeepCopy()
		s.Duration = t.Deadline
		return &v1alpha1.TimeChaos{ObjectMeta: meta, Spec: s}, nil
	}
	return nil, fmt.Errorf("step %s: kmt does not generate chaos of type %s", t.Name, t.Type)
}

func clearPartitionBehavior(wf *v1alpha1.Workflow) {
	for i := range wf.Spec.Templates {
		if e := wf.Spec.Templates[i].EmbedChaos; e != nil && e.NetworkChaos != nil {
			e.NetworkChaos.PartitionBehavior = ""
		}
	}
}
