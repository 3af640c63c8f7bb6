// Package kube holds the little Kubernetes glue the kmt workloads need
// inside a cluster: writing the verdict where a user (and `kmt cluster run`)
// can read it.
package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// ConfigMap keys of the report ConfigMap (a contract with the charts and
// the cluster runner).
const (
	KeyReport  = "report.json"
	KeyVerdict = "verdict"
	KeySummary = "summary.txt"
)

// Namespace returns the pod's namespace: $POD_NAMESPACE, else the
// service-account namespace file.
func Namespace() (string, error) {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return "", fmt.Errorf("cannot tell the namespace: set POD_NAMESPACE (downward API) or run in a pod with a service account: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// KeyProgress holds live progress while the validator runs:
// {"phase": "...", "counts": {"acked": n, "received": n, ...}}.
const KeyProgress = "progress.json"

// ReportWriter writes the report ConfigMap of one run from inside a pod.
type ReportWriter struct {
	c             client.Client
	ns, name      string
	run, scenario string
}

// NewReportWriter connects with the pod's service account (or the
// kubeconfig outside a cluster) to ConfigMap name in the pod's namespace.
func NewReportWriter(name, run, scenario string) (*ReportWriter, error) {
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		return nil, err
	}
	ns, err := Namespace()
	if err != nil {
		return nil, err
	}
	return &ReportWriter{c: c, ns: ns, name: name, run: run, scenario: scenario}, nil
}

// Progress records live progress (before the report exists).
func (w *ReportWriter) Progress(ctx context.Context, phase string, counts any) error {
	b, err := json.Marshal(map[string]any{"phase": phase, "counts": counts})
	if err != nil {
		return err
	}
	return put(ctx, w.c, w.ns, w.name, w.run, w.scenario, map[string]string{KeyProgress: string(b)})
}

// Put adds or replaces keys of the report ConfigMap (report.html, say).
func (w *ReportWriter) Put(ctx context.Context, data map[string]string) error {
	return put(ctx, w.c, w.ns, w.name, w.run, w.scenario, data)
}

// Report writes the final report, its verdict and its summary.
func (w *ReportWriter) Report(ctx context.Context, rep *report.Report) error {
	return PutReport(ctx, w.c, w.ns, w.name, rep)
}

// PutReport creates or updates the report ConfigMap ns/name through c.
func PutReport(ctx context.Context, c client.Client, ns, name string, rep *report.Report) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	var sum bytes.Buffer
	rep.WriteSummary(&sum)
	data := map[string]string{KeyReport: string(js), KeyVerdict: rep.Verdict, KeySummary: sum.String()}
	return put(ctx, c, ns, name, rep.Run, rep.Scenario, data)
}

func put(ctx context.Context, c client.Client, ns, name, run, scenario string, data map[string]string) error {
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
				"app.kubernetes.io/managed-by": "kmt", "kmt.dev/run": run, "kmt.dev/scenario": scenario,
			}},
			Data: data,
		}
		return c.Create(ctx, cm)
	case err != nil:
		return fmt.Errorf("get ConfigMap %s/%s: %w", ns, name, err)
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	for k, v := range data {
		cm.Data[k] = v
	}
	return c.Update(ctx, cm)
}
