package node

import (
	"strings"
	"testing"
)

// TestChaosMeshGoMod: the throwaway module copies Chaos Mesh's own
// replacements (a dependency's are ignored by the go command), turns its
// ./api folder into the api module at the same commit, and refuses any
// other local folder it could not fetch.
func TestChaosMeshGoMod(t *testing.T) {
	upstream := `module github.com/chaos-mesh/chaos-mesh

go 1.25.11

require (
	github.com/chaos-mesh/chaos-mesh/api v0.0.0
	k8s.io/client-go v0.35.3
)

replace (
	github.com/chaos-mesh/chaos-mesh/api => ./api
	k8s.io/api => k8s.io/api v0.35.3
)

replace github.com/fork/x v1.2.3 => github.com/other/x v1.2.4
`
	got, err := chaosMeshGoMod([]byte(upstream), "v0.9.1-0.20260902003049-47411975a8cb")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"require github.com/chaos-mesh/chaos-mesh v0.9.1-0.20260902003049-47411975a8cb\n",
		"\tgithub.com/chaos-mesh/chaos-mesh/api => github.com/chaos-mesh/chaos-mesh/api v0.0.0-20260902003049-47411975a8cb\n",
		"\tk8s.io/api => k8s.io/api v0.35.3\n",
		"\tgithub.com/fork/x => github.com/other/x v1.2.4\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("go.mod lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "=>"); n != 3 {
		t.Errorf("%d replacements, want 3:\n%s", n, got)
	}
	if _, err := chaosMeshGoMod([]byte("replace example.com/y => ../y\n"), "v0.9.1-0.20260902003049-47411975a8cb"); err == nil {
		t.Error("a replacement by an unknown local folder was accepted")
	}
	if _, err := chaosMeshGoMod(nil, "v2.8.3"); err == nil {
		t.Error("a tag instead of a pseudo-version was accepted")
	}
}
