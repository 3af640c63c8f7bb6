package clusterrun

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// LoadChart loads a chart folder or .tgz archive. A dependency declared
// with a file:// repository (charts/<scenario> -> file://../kmt-lib) that
// is not vendored under the chart's charts/ folder is loaded from that path,
// which is what `helm dependency build` would have copied; so a checkout of
// the repository works without running helm first.
func LoadChart(path string) (*chart.Chart, error) {
	ch, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w (a chart folder with Chart.yaml, or a .tgz from `helm package`)", path, err)
	}
	if err := addFileDependencies(ch, path, 0); err != nil {
		return nil, err
	}
	return ch, nil
}

func addFileDependencies(ch *chart.Chart, path string, depth int) error {
	if depth > 8 {
		return fmt.Errorf("chart %s: file:// dependencies nest deeper than 8 levels (a cycle?)", path)
	}
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return nil // archives carry their dependencies inside
	}
	have := map[string]bool{}
	for _, d := range ch.Dependencies() {
		have[d.Name()] = true
	}
	for _, dep := range ch.Metadata.Dependencies {
		if have[dep.Name] || !strings.HasPrefix(dep.Repository, "file://") {
			continue
		}
		depPath := strings.TrimPrefix(dep.Repository, "file://")
		if !filepath.IsAbs(depPath) {
			depPath = filepath.Join(path, depPath)
		}
		sub, err := loader.Load(depPath)
		if err != nil {
			return fmt.Errorf("chart %s: dependency %s from %s: %w", path, dep.Name, dep.Repository, err)
		}
		if err := addFileDependencies(sub, depPath, depth+1); err != nil {
			return err
		}
		ch.AddDependency(sub)
		have[dep.Name] = true
	}
	return nil
}

// splitManifest decodes a multi-document YAML manifest (Helm's rendered
// release) into objects; empty documents are skipped.
func splitManifest(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode rendered manifest: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}
