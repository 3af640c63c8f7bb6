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

// WriteReportConfigMap creates or updates ConfigMap name in the pod's
// namespace with the report, its verdict and its summary.
func WriteReportConfigMap(ctx context.Context, name string, rep *report.Report) error {
	cfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes client config: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		return err
	}
	ns, err := Namespace()
	if err != nil {
		return err
	}
	return PutReport(ctx, c, ns, name, rep)
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
	cm := &corev1.ConfigMap{}
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
				"app.kubernetes.io/managed-by": "kmt", "kmt.dev/run": rep.Run, "kmt.dev/scenario": rep.Scenario,
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
