package clusterrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options configure a Runner.
type Options struct {
	Source, Target Side
	// Chart is the scenario chart: a folder (charts/<scenario>) or a .tgz.
	Chart string
	// Scenario is the scenario name (label kmt.dev/scenario, value scenario).
	Scenario string
	// RunID labels everything of this run (kmt.dev/run); default NewRunID().
	RunID string
	// Release is the Helm release name in both clusters; default
	// kmt-<scenario>-<run>, cut to Helm's 53 characters.
	Release string
	// Values are extra chart values for both sides; kmt sets role, run,
	// scenario and cluster over them.
	Values map[string]any
	// SideValues are extra values for one side only (over Values).
	SideValues map[Role]map[string]any
	// Timeout bounds each Helm install/uninstall; default 5m.
	Timeout time.Duration
	// Wait makes Install wait for the chart's workloads to be ready.
	Wait bool
	// PollInterval is how often Follow looks; default 2s.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Runner drives one scenario run against two clusters.
type Runner struct {
	o     Options
	chart *chart.Chart
	sides []*sideState
}

type sideState struct {
	Side
	c      client.Client
	getter *restGetter
}

// Scheme is what the Runner's clients know as typed objects; everything
// else (Chaos Mesh, prometheus-operator) is handled as unstructured, so a
// missing CRD is an answer rather than a build dependency.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	return s
}

var runIDPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// NewRunID returns a fresh run id: lowercase, label-safe, sortable by time.
func NewRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// ValidateRunID checks a run id can be a label value and part of a Helm
// release name (it is also used in label selectors, so nothing else may
// slip in).
func ValidateRunID(run string) error {
	if run == "" || len(run) > 40 || !runIDPattern.MatchString(run) {
		return fmt.Errorf("run id %q: must be 1-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", run)
	}
	return nil
}

// New loads the chart and connects to both clusters (nothing is created).
func New(o Options) (*Runner, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RunID == "" {
		o.RunID = NewRunID()
	}
	if err := ValidateRunID(o.RunID); err != nil {
		return nil, err
	}
	if o.Scenario == "" {
		return nil, errors.New("cluster runner: Options.Scenario is empty (the scenario name labels every object)")
	}
	if errs := validation.IsValidLabelValue(o.Scenario); len(errs) > 0 {
		return nil, fmt.Errorf("scenario name %q cannot be a label value: %s", o.Scenario, strings.Join(errs, "; "))
	}
	if o.Release == "" {
		o.Release = releaseName(o.Scenario, o.RunID)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	ch, err := LoadChart(o.Chart)
	if err != nil {
		return nil, err
	}
	r := &Runner{o: o, chart: ch}
	for _, s := range []Side{o.Source, o.Target} {
		st, err := connect(s)
		if err != nil {
			return nil, err
		}
		r.sides = append(r.sides, st)
	}
	if r.sides[0].Role != RoleSource || r.sides[1].Role != RoleTarget {
		return nil, fmt.Errorf("cluster runner: Options.Source has role %q and Options.Target %q; want %q and %q", r.sides[0].Role, r.sides[1].Role, RoleSource, RoleTarget)
	}
	return r, nil
}

func connect(s Side) (*sideState, error) {
	if s.Config == nil {
		return nil, fmt.Errorf("%s cluster: no rest config (load one with LoadSide)", s.Name())
	}
	if s.Namespace == "" {
		return nil, fmt.Errorf("%s cluster: no namespace given", s.Name())
	}
	cfg := rest.CopyConfig(s.Config)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		// client-go's default (5 requests/s, bursts of 10) makes one abort
		// sweep, a list per served kind (60 and more), take over 10 s;
		// kubectl's own limits are these.
		cfg.QPS, cfg.Burst = 50, 300
	}
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("%s cluster: client for %s: %w", s.Name(), s.Config.Host, err)
	}
	g, err := newRESTGetter(cfg, s.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%s cluster: %w", s.Name(), err)
	}
	return &sideState{Side: s, c: c, getter: g}, nil
}

// releaseName builds a Helm release name (DNS-1123, at most 53 characters).
func releaseName(scenario, run string) string {
	n := "kmt-" + strings.ToLower(scenario) + "-" + run
	n = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, n)
	if len(n) > 53 {
		n = n[:53]
	}
	return strings.TrimRight(n, "-")
}

// RunID is the run's id.
func (r *Runner) RunID() string { return r.o.RunID }

// Release is the Helm release name used in both clusters.
func (r *Runner) Release() string { return r.o.Release }

// Sides are the two clusters (source first).
func (r *Runner) Sides() []Side { return []Side{r.sides[0].Side, r.sides[1].Side} }

// Values returns the chart values for a side: Values, then SideValues,
// then kmt's own keys (role, run, scenario, cluster).
func (r *Runner) Values(role Role) map[string]any {
	v := map[string]any{}
	maps.Copy(v, r.o.Values)
	maps.Copy(v, r.o.SideValues[role])
	v["role"] = string(role)
	v["run"] = r.o.RunID
	v["scenario"] = r.o.Scenario
	v["cluster"] = string(role)
	return v
}

// releaseLabels go on the Helm release Secret so Abort finds it by run.
func (r *Runner) releaseLabels(role Role) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedByKmt,
		LabelRun:       r.o.RunID,
		LabelScenario:  r.o.Scenario,
		LabelCluster:   string(role),
	}
}

func (s *sideState) helmConfig(log *slog.Logger) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	debug := func(format string, v ...any) { log.Debug(fmt.Sprintf(format, v...), "cluster", s.Role) }
	if err := cfg.Init(s.getter, s.Namespace, "secret", debug); err != nil {
		return nil, fmt.Errorf("%s cluster: helm configuration: %w", s.Name(), err)
	}
	return cfg, nil
}

func (r *Runner) install(ctx context.Context, s *sideState, dryRun bool) (*release.Release, error) {
	cfg, err := s.helmConfig(r.o.Logger)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName = r.o.Release
	in.Namespace = s.Namespace
	in.Labels = r.releaseLabels(s.Role)
	in.Timeout = r.o.Timeout
	in.Wait = r.o.Wait && !dryRun
	if dryRun {
		// Rendered against the live server (its version and API groups),
		// checked for name and object conflicts, but nothing is written.
		in.DryRun = true
		in.DryRunOption = "client"
	}
	rel, err := in.RunWithContext(ctx, r.chart, r.Values(s.Role))
	if err != nil {
		what := "install"
		if dryRun {
			what = "render (dry run)"
		}
		return nil, fmt.Errorf("%s cluster: helm %s of chart %s as release %s in namespace %s: %w", s.Name(), what, r.o.Chart, r.o.Release, s.Namespace, err)
	}
	return rel, nil
}

// ObjectRef names one Kubernetes object.
type ObjectRef struct {
	Cluster    Role   `json:"cluster"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return fmt.Sprintf("%s %s/%s", o.Cluster, o.Kind, o.Name)
	}
	return fmt.Sprintf("%s %s/%s -n %s", o.Cluster, o.Kind, o.Name, o.Namespace)
}

func refOf(role Role, u *unstructured.Unstructured, defaultNS string) ObjectRef {
	ns := u.GetNamespace()
	if ns == "" && isNamespacedGuess(u.GetKind()) {
		ns = defaultNS
	}
	return ObjectRef{Cluster: role, APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: ns, Name: u.GetName()}
}

// isNamespacedGuess is for display only: the cluster-scoped kinds a chart
// could plausibly render.
func isNamespacedGuess(kind string) bool {
	switch kind {
	case "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "StorageClass", "PersistentVolume":
		return false
	}
	return true
}

// SidePlan is what a run will do in one cluster.
type SidePlan struct {
	Side    Side
	Release string
	// ReleaseSecret is the Secret where Helm records the release.
	ReleaseSecret string
	// Create are the chart's objects (hooks included), Chaos Mesh ones too.
	Create []ObjectRef
	// Chaos are the Chaos Mesh objects among Create.
	Chaos []ObjectRef
	// Touch are existing objects the run reads or depends on but does not
	// own (the namespace).
	Touch []ObjectRef
	// ChaosNamespaces are the namespaces chaos lives in or aims at.
	ChaosNamespaces []string
	// Refused is set when a chaos namespace lacks the opt-in label.
	Refused *ChaosRefusedError
	// Values are the chart values used.
	Values map[string]any

	objects []*unstructured.Unstructured
}

// Plan is what a run will create and touch in both clusters.
type Plan struct {
	Run, Scenario, Chart string
	Sides                []SidePlan
}

// Err is the first refusal (a chaos namespace without the opt-in), or nil.
func (p *Plan) Err() error {
	for _, s := range p.Sides {
		if s.Refused != nil {
			return s.Refused
		}
	}
	return nil
}

// Write prints the plan for a person to read before saying yes.
func (p *Plan) Write(w io.Writer) {
	fmt.Fprintf(w, "kmt cluster run %s: scenario %s, chart %s\n", p.Run, p.Scenario, p.Chart)
	for _, s := range p.Sides {
		fmt.Fprintf(w, "\n%s, namespace %s, Helm release %s (role=%s)\n", s.Side.Name(), s.Side.Namespace, s.Release, s.Side.Role)
		for _, t := range s.Touch {
			fmt.Fprintf(w, "  touch   %s\n", t)
		}
		fmt.Fprintf(w, "  create  Secret/%s -n %s (Helm release record)\n", s.ReleaseSecret, s.Side.Namespace)
		for _, c := range s.Create {
			fmt.Fprintf(w, "  create  %s/%s", c.Kind, c.Name)
			if c.Namespace != "" {
				fmt.Fprintf(w, " -n %s", c.Namespace)
			}
			if c.APIVersion != "" && strings.Contains(c.APIVersion, "chaos-mesh.org") {
				fmt.Fprint(w, "  [FAULT]")
			}
			fmt.Fprintln(w)
		}
		if len(s.Chaos) > 0 {
			fmt.Fprintf(w, "  faults aimed at namespaces: %s\n", strings.Join(s.ChaosNamespaces, ", "))
		}
		if s.Refused != nil {
			fmt.Fprintf(w, "  REFUSED: %v\n", s.Refused)
		}
	}
	fmt.Fprintf(w, "\nAbort at any time with: kmt abort --run %s (removes everything labelled %s=%s in both clusters)\n", p.Run, LabelRun, p.Run)
}

// Plan renders the chart for both clusters against the live API servers
// (a Helm dry run: nothing is written) and lists what Install would create
// and touch. A namespace missing the chaos opt-in is recorded in
// SidePlan.Refused (Plan.Err), not returned as an error, so the plan can
// still be shown.
func (r *Runner) Plan(ctx context.Context) (*Plan, error) {
	p := &Plan{Run: r.o.RunID, Scenario: r.o.Scenario, Chart: r.o.Chart}
	for _, s := range r.sides {
		var ns corev1.Namespace
		if err := s.c.Get(ctx, client.ObjectKey{Name: s.Namespace}, &ns); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%s cluster: namespace %s does not exist; create it first: kubectl --context %s create namespace %s", s.Name(), s.Namespace, s.Context, s.Namespace)
			}
			return nil, fmt.Errorf("%s cluster: reading namespace %s: %w", s.Name(), s.Namespace, err)
		}
		rel, err := r.install(ctx, s, true)
		if err != nil {
			return nil, err
		}
		objs, err := splitManifest(rel.Manifest)
		if err != nil {
			return nil, fmt.Errorf("%s cluster: %w", s.Name(), err)
		}
		for _, h := range rel.Hooks {
			ho, err := splitManifest(h.Manifest)
			if err != nil {
				return nil, fmt.Errorf("%s cluster: hook %s: %w", s.Name(), h.Name, err)
			}
			objs = append(objs, ho...)
		}
		sp := SidePlan{
			Side:          s.Side,
			Release:       r.o.Release,
			ReleaseSecret: "sh.helm.release.v1." + r.o.Release + ".v1",
			Touch:         []ObjectRef{{Cluster: s.Role, APIVersion: "v1", Kind: "Namespace", Name: s.Namespace}},
			Values:        r.Values(s.Role),
			objects:       objs,
		}
		for _, o := range objs {
			ref := refOf(s.Role, o, s.Namespace)
			sp.Create = append(sp.Create, ref)
			if IsChaos(o) {
				sp.Chaos = append(sp.Chaos, ref)
			}
		}
		for n := range chaosNamespaces(objs, s.Namespace) {
			sp.ChaosNamespaces = append(sp.ChaosNamespaces, n)
		}
		sort.Strings(sp.ChaosNamespaces)
		if err := CheckChaosAllowed(ctx, s.c, s.Side, objs, s.Namespace); err != nil {
			var refused *ChaosRefusedError
			if !errors.As(err, &refused) {
				return nil, err
			}
			sp.Refused = refused
		}
		p.Sides = append(p.Sides, sp)
	}
	return p, nil
}

// Install plans (the chaos opt-in is enforced here, before anything is
// written), then installs the chart into the source and then the target
// cluster. On a failure after the source install, the error says so; call
// Abort to remove what was created.
func (r *Runner) Install(ctx context.Context) error {
	p, err := r.Plan(ctx)
	if err != nil {
		return err
	}
	if err := p.Err(); err != nil {
		return err
	}
	for i, s := range r.sides {
		rel, err := r.install(ctx, s, false)
		if err != nil {
			if i > 0 {
				return fmt.Errorf("%w; the source cluster is already installed: run `kmt abort --run %s` to remove it", err, r.o.RunID)
			}
			return err
		}
		r.o.Logger.Info("chart installed", "cluster", s.Role, "context", s.Context, "namespace", s.Namespace, "release", rel.Name, "status", rel.Info.Status)
	}
	return nil
}

// Uninstall removes the Helm release from both clusters, then everything
// else labelled with the run (the report ConfigMap, chaos the run created
// at run time), exactly as Abort does. Fetch the report first.
func (r *Runner) Uninstall(ctx context.Context) (*AbortResult, error) {
	var errs []error
	for _, s := range r.sides {
		if err := r.uninstallRelease(s, r.o.Release); err != nil {
			errs = append(errs, err)
		}
	}
	res, err := Abort(ctx, r.Sides(), r.o.RunID, AbortOptions{Logger: r.o.Logger, Timeout: r.o.Timeout})
	errs = append(errs, err)
	return res, errors.Join(errs...)
}

// Abort removes every object of this run in both clusters (see Abort).
func (r *Runner) Abort(ctx context.Context, o AbortOptions) (*AbortResult, error) {
	if o.Logger == nil {
		o.Logger = r.o.Logger
	}
	return Abort(ctx, r.Sides(), r.o.RunID, o)
}

func (r *Runner) uninstallRelease(s *sideState, name string) error {
	return uninstallRelease(s, name, r.o.Timeout, r.o.Logger)
}

func uninstallRelease(s *sideState, name string, timeout time.Duration, log *slog.Logger) error {
	cfg, err := s.helmConfig(log)
	if err != nil {
		return err
	}
	u := action.NewUninstall(cfg)
	u.IgnoreNotFound = true
	u.Timeout = timeout
	u.DeletionPropagation = "background"
	if _, err := u.Run(name); err != nil {
		return fmt.Errorf("%s cluster: helm uninstall %s -n %s: %w", s.Name(), name, s.Namespace, err)
	}
	log.Info("chart uninstalled", "cluster", s.Role, "namespace", s.Namespace, "release", name)
	return nil
}
