package agent

import (
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
)

// Brokers locate one Kafka cluster's broker pods (chart value
// targets.source / targets.target).
type Brokers struct {
	Namespace       string `json:"namespace"`
	BrokerSelector  string `json:"brokerSelector"`
	BrokerPodPrefix string `json:"brokerPodPrefix"`
}

// Mirror locates the mirror's pods (chart value targets.mirror).
type Mirror struct {
	Namespace string `json:"namespace"`
	Selector  string `json:"selector"`
	Container string `json:"container"`
}

// Targets is the chart's targets value, mounted as targets.yaml.
type Targets struct {
	Source Brokers `json:"source"`
	Target Brokers `json:"target"`
	Mirror Mirror  `json:"mirror"`
}

// ReadTargets reads targets.yaml.
func ReadTargets(path string) (Targets, error) {
	var t Targets
	b, err := os.ReadFile(path)
	if err != nil {
		return t, fmt.Errorf("reading the fault targets: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &t); err != nil {
		return t, fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range []string{t.Source.BrokerSelector, t.Target.BrokerSelector, t.Mirror.Selector} {
		if _, err := ParseSelector(s); err != nil {
			return t, fmt.Errorf("%s: %w", path, err)
		}
	}
	return t, nil
}

// ParseSelector reads an equality selector "k=v,k=v" (the charts' form).
func ParseSelector(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label selector %q: want key=value[,key=value]", s)
		}
		m[k] = v
	}
	return m, nil
}

// Params turns targets into the mesh parameters that place faults (the
// mirror runs in the target cluster).
func (t Targets) Params() mesh.Params {
	p := mesh.DefaultParams()
	kc := func(b Brokers) mesh.KafkaCluster {
		l, _ := ParseSelector(b.BrokerSelector)
		return mesh.KafkaCluster{Namespace: b.Namespace, BrokerLabels: l, BrokerPodPrefix: b.BrokerPodPrefix}
	}
	p.Source, p.Target = kc(t.Source), kc(t.Target)
	p.MirrorNamespace = t.Mirror.Namespace
	p.MirrorLabels, _ = ParseSelector(t.Mirror.Selector)
	p.MirrorContainers = []string{t.Mirror.Container}
	return p
}
