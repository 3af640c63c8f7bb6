package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

func TestPrepareMirrorMaker2NamesTargetTopicsAndTakesTheFragment(t *testing.T) {
	frag := filepath.Join(t.TempDir(), "prod.properties")
	if err := os.WriteFile(frag, []byte("tasks.max=4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(Options{Scenario: "baseline", Short: true, Mirror: scenarios.MirrorMirrorMaker2, MirrorConfig: frag})
	if err != nil {
		t.Fatal(err)
	}
	m := p.Scenario.Spec.Topology.Mirror
	if got := p.Scenario.Spec.Topology.Topics[0].Target(); got != "source.orders" {
		t.Errorf("target topic %q, want source.orders (MirrorMaker 2's default policy)", got)
	}
	if !strings.Contains(m.Config, "tasks.max=4") || !strings.Contains(m.Config, frag) {
		t.Errorf("mirror config %q lacks the --mirror-config fragment", m.Config)
	}
}

func TestPrepareMirrorMaker2RefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	reserved := filepath.Join(dir, "bad.properties")
	os.WriteFile(reserved, []byte("replication.policy.class=org.example.Custom\n"), 0o644)
	for name, o := range map[string]Options{
		"reserved key in fragment": {Mirror: scenarios.MirrorMirrorMaker2, MirrorConfig: reserved},
		"fragment without mm2":     {MirrorConfig: reserved},
		"missing fragment file":    {Mirror: scenarios.MirrorMirrorMaker2, MirrorConfig: filepath.Join(dir, "none")},
		"target topic vs policy":   {Mirror: scenarios.MirrorMirrorMaker2, TargetTopic: "orders"},
	} {
		o.Scenario, o.Short = "baseline", true
		_, err := Prepare(o)
		if ExitCode(err) != ExitUsage {
			t.Errorf("%s: err %v (exit %d), want a usage error (exit 2)", name, err, ExitCode(err))
		}
	}
}
