package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// PodCgroupParent is the cgroup containerd puts every pod container under,
// in each hierarchy: the kubelet runs without QoS cgroups
// (cgroupsPerQOS: false) and names no parent, so containerd uses its CRI
// namespace's name. Its folders outlive the containers (containerd removes
// a container's own cgroup, never the parent): teardown removes them.
const PodCgroupParent = "k8s.io"

// CgroupRoot is where the machine mounts its cgroup hierarchies (cgroup v1
// controllers, each in its own folder, plus the cgroup2 "unified" tree).
const CgroupRoot = "/sys/fs/cgroup"

// nodeCgroups lists the folders of PodCgroupParent in every hierarchy under
// root, children before their parents (a cgroup is removed only when it
// has no children).
func nodeCgroups(root string) []string {
	parents, _ := filepath.Glob(filepath.Join(root, "*", PodCgroupParent))
	var dirs []string
	for _, p := range parents {
		_ = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool {
		if di, dj := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/"); di != dj {
			return di > dj
		}
		return dirs[i] < dirs[j]
	})
	return dirs
}

// removeNodeCgroups removes every folder nodeCgroups lists. A cgroup that
// still has processes cannot be removed: the error names it and its
// processes (sweep kills the node's processes first).
func removeNodeCgroups(root string) error {
	var errs []error
	for _, d := range nodeCgroups(root) {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			errs = append(errs, fmt.Errorf("removing cgroup %s (processes: %q): %w", d, strings.Fields(string(procs)), err))
		}
	}
	return errors.Join(errs...)
}

// HostCgroup is a CPU cgroup for a process started on this machine beside
// the node's pods: a child of PodCgroupParent, where containerd puts every
// pod container, weighted as the kubelet weighs a container with the same
// CPU request. The CPU scheduler weighs all of PodCgroupParent as one
// entity against each thread outside it, so a process outside waits for a
// CPU in another queue than the pods do: on this shared 2-core machine
// (20-70 runnable threads) kmt's loadgen and validator measured a p99 mirror
// latency of 3.3 s as host processes and 0.34 s in a HostCgroup, on the
// same Kafkas and mirror minutes apart (the pods: 0.73 s).
type HostCgroup struct {
	dir string
}

// NewHostCgroup creates the cgroup PodCgroupParent/name in the machine's
// cpu hierarchy (cgroup v1's cpu controller, else cgroup2) with the weight
// of a container requesting milliCPU. Remove it when its processes ended;
// the node's teardown removes what is left.
func NewHostCgroup(name string, milliCPU int64) (*HostCgroup, error) {
	root, v2, err := cpuHierarchy()
	if err != nil {
		return nil, err
	}
	parent := filepath.Join(root, PodCgroupParent)
	if _, err := os.Stat(parent); err != nil {
		return nil, fmt.Errorf("the pods' cgroup %s does not exist (no pod has run yet?): %w", parent, err)
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	file, value := "cpu.shares", milliCPUToShares(milliCPU)
	if v2 {
		file, value = "cpu.weight", sharesToWeight(value)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(fmt.Sprint(value)), 0o644); err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("setting %s of cgroup %s to %d: %w", file, dir, value, err)
	}
	return &HostCgroup{dir: dir}, nil
}

// Command is exec.CommandContext(ctx, bin, args...) whose process joins the
// cgroup before bin starts (a shell writes its own PID into cgroup.procs and
// execs bin), so every thread bin starts is in it.
func (c *HostCgroup) Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	script := `echo $$ > "$0" && exec "$@"`
	return exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, filepath.Join(c.dir, "cgroup.procs"), bin}, args...)...)
}

// Remove deletes the cgroup; it fails while a process is still in it.
func (c *HostCgroup) Remove() error {
	if err := os.Remove(c.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing cgroup %s: %w", c.dir, err)
	}
	return nil
}

// milliCPUToShares is the kubelet's conversion of a CPU request to cgroup
// v1 cpu.shares (MilliCPUToShares: 100m is 102, at least 2).
func milliCPUToShares(milliCPU int64) int64 { return max(milliCPU*1024/1000, 2) }

// sharesToWeight is runc's conversion of cpu.shares to cgroup2 cpu.weight.
func sharesToWeight(shares int64) int64 { return 1 + (shares-2)*9999/262142 }

// cpuHierarchy finds where the cpu controller is mounted: a cgroup v1
// hierarchy with the cpu option, else the cgroup2 tree (v2 true).
func cpuHierarchy() (dir string, v2 bool, err error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	unified := ""
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 {
			continue
		}
		switch tail[0] {
		case "cgroup":
			for _, o := range strings.Split(tail[2], ",") {
				if o == "cpu" {
					return unescapeMountPath(fields[4]), false, nil
				}
			}
		case "cgroup2":
			unified = unescapeMountPath(fields[4])
		}
	}
	if unified == "" {
		return "", false, fmt.Errorf("no cgroup hierarchy with the cpu controller in /proc/self/mountinfo")
	}
	return unified, true, nil
}
