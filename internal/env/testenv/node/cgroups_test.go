package node

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveNodeCgroups: the pods' cgroup folders (PodCgroupParent and
// everything below it, in every hierarchy) are listed children first and
// all removed, and a folder beside them is kept. Plain folders stand in
// for cgroupfs here: like a cgroup, a folder with a child cannot be
// removed, so removing a parent before its child fails (with the order
// reversed: 3 errors, 3 folders left).
func TestRemoveNodeCgroups(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{
		"cpu/k8s.io/0123abc", "cpu/k8s.io/kmt-local-run", "memory/k8s.io/0123abc/sub", "pids/k8s.io", "cpu/other",
	} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(nodeCgroups(root)); got != 7 {
		t.Fatalf("nodeCgroups found %d folders, want 7: %v", got, nodeCgroups(root))
	}
	if err := removeNodeCgroups(root); err != nil {
		t.Fatal(err)
	}
	if left := nodeCgroups(root); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := os.Stat(filepath.Join(root, "cpu", "other")); err != nil {
		t.Errorf("a cgroup that is not the node's was removed: %v", err)
	}
}
