// Package gameday runs an SRE game day from a run book: ordered steps, each
// a hypothesis tested by injecting faults into a mirror under load, with
// steady-state checks before, during and after every step, halt conditions
// watched continuously (a broken one heals every active fault at once and
// stops the day), pause/resume/abort from another terminal, optional
// Grafana annotations and time-to-detect of a named alert, and one report
// (game-day.json and game-day.html) with a section per step and findings.
package gameday

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Run book identity.
const (
	APIVersion = "kmt.dev/v1"
	Kind       = "GameDay"
)

// Backends a run book can name.
const (
	BackendEmbedded = "embedded" // two embedded clusters per step, started by kmt
	BackendExternal = "external" // the user's clusters and mirror: load, checks, no fault injection
	// BackendKubernetes: two Kubernetes clusters; each step is a scenario
	// chart installed into both (kmt cluster run's machinery), its faults
	// Chaos Mesh objects and kmt's in-cluster agent.
	BackendKubernetes = "kubernetes"
)

// Book is a run book.
type Book struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Clusters   Clusters `yaml:"clusters"`
	// Prometheus answers PromQL checks and the alerts API (optional).
	Prometheus *Endpoint `yaml:"prometheus,omitempty"`
	// Alertmanager answers the alerts API instead of Prometheus (optional).
	Alertmanager *Endpoint `yaml:"alertmanager,omitempty"`
	// Grafana receives an annotation at every fault start and end (optional).
	Grafana *Grafana `yaml:"grafana,omitempty"`
	// Halt conditions watched during every step, besides each step's own.
	Halt  []Check `yaml:"halt,omitempty"`
	Steps []Step  `yaml:"steps"`
}

// Metadata names the game day and who runs and who may stop it.
type Metadata struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	Owner       string `yaml:"owner"`
	AbortOwner  string `yaml:"abortOwner"`
}

// Clusters say where the steps run.
type Clusters struct {
	Backend         string `yaml:"backend"`
	SourceBootstrap string `yaml:"sourceBootstrap,omitempty"`
	TargetBootstrap string `yaml:"targetBootstrap,omitempty"`
	// TargetTopic: the mirrored topic's name on the target (external).
	TargetTopic string `yaml:"targetTopic,omitempty"`
	// MetricsAddr: each step serves its /metrics here while it runs, for
	// the Prometheus that answers the PromQL checks and the alerts.
	MetricsAddr string `yaml:"metricsAddr,omitempty"`

	// Kubernetes (backend kubernetes): the kubeconfig ("" = $KUBECONFIG or
	// ~/.kube/config, as kubectl), the two clusters, the chart values both
	// get, the library chart's folder and the bound on each Helm action.
	Kubeconfig string         `yaml:"kubeconfig,omitempty"`
	Source     *KubeCluster   `yaml:"source,omitempty"`
	Target     *KubeCluster   `yaml:"target,omitempty"`
	Values     map[string]any `yaml:"values,omitempty"`
	// Charts is the folder holding the kmt-lib library chart (default
	// charts): each step's scenario chart is generated from the step's
	// scenario (its faults, load and short form included) over it.
	Charts  string             `yaml:"charts,omitempty"`
	Timeout scenarios.Duration `yaml:"timeout,omitempty"`
}

// KubeCluster is one Kubernetes cluster of a game day.
type KubeCluster struct {
	Context   string `yaml:"context"`
	Namespace string `yaml:"namespace"`
	// Values are chart values for this cluster only (over clusters.values),
	// e.g. kafka.sourceBootstrap or chaos.peerAddresses.
	Values map[string]any `yaml:"values,omitempty"`
}

// Endpoint is an HTTP API.
type Endpoint struct {
	URL string `yaml:"url"`
}

// Grafana is where annotations go.
type Grafana struct {
	URL string `yaml:"url"`
	// TokenEnv names the environment variable holding a service-account
	// token (never the token itself in a run book).
	TokenEnv string `yaml:"tokenEnv,omitempty"`
	// DashboardUID and PanelID put the annotations on one dashboard (and
	// panel); without them they are organization annotations, shown on
	// any dashboard that queries the Grafana data source by tag (kmt,
	// gameday, the step's name, the fault's name, Tags).
	DashboardUID string   `yaml:"dashboardUID,omitempty"`
	PanelID      int64    `yaml:"panelId,omitempty"`
	Tags         []string `yaml:"tags,omitempty"`
}

// Step is one experiment.
type Step struct {
	Name       string `yaml:"name"`
	Hypothesis string `yaml:"hypothesis"`
	// Scenario is a catalogue name or a path (default baseline); Short
	// takes its short form. Faults, when given, replace its timeline.
	Scenario string             `yaml:"scenario,omitempty"`
	Short    bool               `yaml:"short,omitempty"`
	Faults   []scenarios.Fault  `yaml:"faults,omitempty"`
	Load     *LoadOverride      `yaml:"load,omitempty"`
	Drain    scenarios.Duration `yaml:"drain,omitempty"`
	// Defects make the reference mirror misbehave (rehearsals of the day).
	Defects     []scenarios.Defect `yaml:"defects,omitempty"`
	SteadyState []Check            `yaml:"steadyState,omitempty"`
	Halt        []Check            `yaml:"halt,omitempty"`
	ExpectAlert *ExpectAlert       `yaml:"expectAlert,omitempty"`
	// Record lists what to keep in the report beyond the checks: any of
	// lag, latency, counts, faults (all by default).
	Record []string `yaml:"record,omitempty"`
}

// LoadOverride changes a step's load.
type LoadOverride struct {
	Rate     float64            `yaml:"rate,omitempty"`
	Duration scenarios.Duration `yaml:"duration,omitempty"`
}

// ExpectAlert: the named alert should fire within Within of the first
// fault's start (time to detect).
type ExpectAlert struct {
	Name   string             `yaml:"name"`
	Within scenarios.Duration `yaml:"within"`
}

// Invariants kmt measures itself.
const (
	NothingLost     = "nothing-lost"     // lost (and, after the drain, unseen) == 0
	LagBelow        = "lag-below"        // acked not yet delivered < value records
	P99Below        = "p99-below"        // p99 latency of recent arrivals < value seconds
	DuplicatesBelow = "duplicates-below" // duplicates so far < value records
)

// Check is a steady-state check or a halt condition: one of kmt's
// invariants, or a PromQL expression compared with op and value.
type Check struct {
	Invariant string  `yaml:"invariant,omitempty"`
	PromQL    string  `yaml:"promql,omitempty"`
	Op        string  `yaml:"op,omitempty"` // PromQL only: < <= == != >= >
	Value     float64 `yaml:"value,omitempty"`
}

// String names a check the way a person writes it.
func (c Check) String() string {
	switch c.Invariant {
	case NothingLost:
		return NothingLost
	case LagBelow:
		return fmt.Sprintf("lag < %g records", c.Value)
	case P99Below:
		return fmt.Sprintf("p99 latency < %gs", c.Value)
	case DuplicatesBelow:
		return fmt.Sprintf("duplicates < %g", c.Value)
	}
	return fmt.Sprintf("%s %s %g", c.PromQL, c.Op, c.Value)
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,52}[a-z0-9])?$`)

// Read parses and validates a run book.
func Read(path string) (*Book, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read run book: %w", err)
	}
	var b Book
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%s: %w (see kmt gameday init for a template)", path, err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

// Validate lists every problem of the run book at once.
func (b *Book) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if b.APIVersion != APIVersion || b.Kind != Kind {
		bad("apiVersion/kind must be %s / %s, got %q / %q", APIVersion, Kind, b.APIVersion, b.Kind)
	}
	if !nameRE.MatchString(b.Metadata.Name) {
		bad("metadata.name %q: lower-case letters, digits and '-'", b.Metadata.Name)
	}
	if b.Metadata.Owner == "" || b.Metadata.AbortOwner == "" {
		bad("metadata.owner and metadata.abortOwner are required: who runs the game day and who may stop it")
	}
	switch b.Clusters.Backend {
	case BackendEmbedded:
	case BackendExternal:
		if b.Clusters.SourceBootstrap == "" || b.Clusters.TargetBootstrap == "" {
			bad("clusters.backend external needs sourceBootstrap and targetBootstrap")
		}
	case BackendKubernetes:
		for _, side := range []struct {
			name string
			k    *KubeCluster
		}{{"source", b.Clusters.Source}, {"target", b.Clusters.Target}} {
			if side.k == nil || side.k.Context == "" || side.k.Namespace == "" {
				bad("clusters.%s: backend kubernetes needs context and namespace (kubectl config get-contexts lists the contexts)", side.name)
			}
		}
	default:
		bad("clusters.backend %q: use embedded (kmt starts two clusters per step), external (yours) or kubernetes (scenario charts in two kube contexts)", b.Clusters.Backend)
	}
	if b.Grafana != nil && b.Grafana.URL == "" {
		bad("grafana.url is required when grafana is set")
	}
	if len(b.Steps) == 0 {
		bad("steps: a game day needs at least one step")
	}
	seen := map[string]bool{}
	for i, s := range b.Steps {
		at := fmt.Sprintf("steps[%d] (%s)", i, s.Name)
		if !nameRE.MatchString(s.Name) || seen[s.Name] {
			bad("%s: name must be unique, lower-case letters, digits and '-'", at)
		}
		seen[s.Name] = true
		if strings.TrimSpace(s.Hypothesis) == "" {
			bad("%s: hypothesis is required: what you expect to hold, in words", at)
		}
		if b.Clusters.Backend == BackendExternal && len(s.Faults) > 0 {
			bad("%s: kmt cannot inject faults into clusters it did not start; inject them yourself (or use kmt cluster run) and keep the step's checks", at)
		}
		if b.Clusters.Backend == BackendKubernetes && len(s.Defects) > 0 {
			bad("%s: defects make kmt's reference mirror misbehave; on Kubernetes the mirror is yours (run defect rehearsals on the embedded backend)", at)
		}
		if s.ExpectAlert != nil && b.Prometheus == nil && b.Alertmanager == nil {
			bad("%s: expectAlert needs prometheus.url or alertmanager.url", at)
		}
		for j, c := range append(append([]Check{}, s.SteadyState...), s.Halt...) {
			if err := c.validate(b); err != nil {
				bad("%s check %d: %v", at, j, err)
			}
		}
	}
	for j, c := range b.Halt {
		if err := c.validate(b); err != nil {
			bad("halt[%d]: %v", j, err)
		}
	}
	return errors.Join(errs...)
}

func (c Check) validate(b *Book) error {
	switch {
	case c.Invariant != "" && c.PromQL != "":
		return errors.New("give invariant or promql, not both")
	case c.PromQL != "":
		if b.Prometheus == nil {
			return fmt.Errorf("promql %q needs prometheus.url", c.PromQL)
		}
		switch c.Op {
		case "<", "<=", "==", "!=", ">=", ">":
		default:
			return fmt.Errorf("op %q: use < <= == != >= >", c.Op)
		}
	case c.Invariant == NothingLost:
	case c.Invariant == P99Below && b.Clusters.Backend == BackendKubernetes && b.Prometheus == nil:
		return fmt.Errorf("%s on Kubernetes is read from the validator's latency histogram in Prometheus: set prometheus.url", P99Below)
	case c.Invariant == LagBelow, c.Invariant == P99Below, c.Invariant == DuplicatesBelow:
		if c.Value <= 0 {
			return fmt.Errorf("%s needs a value > 0", c.Invariant)
		}
	default:
		return fmt.Errorf("invariant %q: use %s, %s, %s or %s (or promql)", c.Invariant, NothingLost, LagBelow, P99Below, DuplicatesBelow)
	}
	return nil
}

// Template is what kmt gameday init writes: a run book that runs as is on
// the embedded backend.
const Template = `# A kmt game day run book. Run it with: kmt gameday run THIS-FILE
# Pause, resume or abort it from another terminal:
#   kmt gameday pause | resume | abort [REPORT-DIR]
apiVersion: kmt.dev/v1
kind: GameDay
metadata:
  name: mirror-resilience
  description: Does the mirror ride out a slow and a cut WAN without losing data?
  owner: you@example.com          # runs the day
  abortOwner: oncall@example.com  # may stop it at any time
clusters:
  backend: embedded   # embedded: kmt starts two clusters per step; external: yours;
                      # kubernetes: each step's chart installed into two kube contexts
  # sourceBootstrap: kafka-a:9092
  # targetBootstrap: kafka-b:9092
  # metricsAddr: 0.0.0.0:9464   # each step serves /metrics here for your Prometheus
  # For backend kubernetes (as kmt cluster run; both namespaces labelled
  # kmt.dev/chaos=allowed; a halt or abort removes the step's run by label):
  # source: {context: kind-kmt-source, namespace: kmt}
  # target: {context: kind-kmt-target, namespace: kmt, values: {kafka: {sourceBootstrap: 172.18.0.2:32100}}}
  # values: {chaos: {peerAddresses: [172.18.0.2/32]}}   # chart values for both
  # charts: charts    # the folder holding the kmt-lib library chart
# prometheus: {url: http://prometheus:9090}       # PromQL checks, alerts API
# alertmanager: {url: http://alertmanager:9093}   # alerts API (instead)
# grafana: {url: http://grafana:3000, tokenEnv: GRAFANA_TOKEN}
halt:                  # watched during every step: a break heals all faults and stops the day
  - invariant: nothing-lost
steps:
  - name: steady
    hypothesis: Without faults the mirror keeps up and loses nothing.
    scenario: baseline
    short: true
    load: {rate: 500, duration: 8s}
    steadyState:
      - invariant: lag-below
        value: 2000
      - invariant: p99-below
        value: 1        # seconds
  - name: slow-wan
    hypothesis: 100 ms more WAN latency keeps the p99 under 2 s and loses nothing.
    scenario: baseline
    short: true
    load: {rate: 500, duration: 10s}
    faults:
      - {name: slow, kind: wan-latency, at: 3s, duration: 4s, params: {latency: 100ms}}
    steadyState:
      - invariant: nothing-lost
      - invariant: p99-below
        value: 2
    # expectAlert: {name: KmtMirrorLagHigh, within: 60s}
  - name: cut-wan
    hypothesis: A 4 s WAN cut builds a backlog that stays under 10000 records.
    scenario: baseline
    short: true
    load: {rate: 500, duration: 12s}
    faults:
      - {name: cut, kind: wan-partition, at: 3s, duration: 4s}
    steadyState:
      - invariant: nothing-lost
    halt:
      - invariant: lag-below
        value: 10000
    record: [lag, latency, counts, faults]
`
