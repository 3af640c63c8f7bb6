// Package clusterrun drives a kmt scenario against two Kubernetes clusters (a
// source and a target kube context): it plans, installs the scenario chart
// into both with the Helm Go SDK, follows the run, fetches the verdict the
// validator Job wrote, uninstalls, and aborts (removes every object kmt made,
// Chaos Mesh faults included, in both clusters).
//
// Contract with the charts (charts/kmt-lib) and the validator:
//   - every object a chart renders, and every object kmt's workloads create
//     at run time, carries the label kmt.dev/run=<run id>; kmt-made objects
//     also carry app.kubernetes.io/managed-by=kmt. Helm forcibly rewrites
//     app.kubernetes.io/managed-by to "Helm" on everything it installs, so
//     objects are found by kmt.dev/run plus managed-by in (kmt, Helm), never
//     by managed-by=kmt alone.
//   - the validator writes its report into a ConfigMap labelled with the run
//     id, under the data key report.json (DataReport); while running it may
//     keep a progress ConfigMap with the key progress.json (DataProgress).
//   - chart values: role (source|target), run, scenario, cluster (Values).
package clusterrun

// Labels and values kmt puts on (and looks for in) Kubernetes objects.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelScenario  = "kmt.dev/scenario"
	LabelRun       = "kmt.dev/run"
	LabelCluster   = "kmt.dev/cluster"
	LabelRole      = "kmt.dev/role"
	// LabelChaos on a namespace is the opt-in: kmt creates Chaos Mesh
	// objects only in (and aimed at) namespaces labelled kmt.dev/chaos=allowed.
	LabelChaos = "kmt.dev/chaos"

	ManagedByKmt  = "kmt"
	ManagedByHelm = "Helm" // what Helm writes over app.kubernetes.io/managed-by
	ChaosAllowed  = "allowed"

	// DataReport is the ConfigMap data key holding the validator's report JSON.
	DataReport = "report.json"
	// DataProgress is the ConfigMap data key holding the validator's live
	// progress JSON (phase, counts).
	DataProgress = "progress.json"
)

// Role is which side of the mirror a cluster is.
type Role string

// Roles.
const (
	RoleSource Role = "source"
	RoleTarget Role = "target"
)
