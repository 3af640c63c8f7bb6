package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Stop tears the node down and removes its folder: the kubelet first (so
// it restarts nothing), then every pod through containerd's CRI (which
// stops the containers, runs the CNI DEL and removes the pod network
// namespaces), then kube-proxy and its iptables rules, the controllers,
// containerd, the API server and etcd, and finally Sweep for whatever
// survived. It is safe on a half-started
// node and reports every failure, not just the first.
func (n *Node) Stop() error {
	if n.stopped {
		return nil
	}
	n.stopped = true
	var errs []error
	byName := map[string]*daemon{}
	for _, d := range n.daemons {
		byName[d.name] = d
	}
	stop := func(name string) {
		if d := byName[name]; d != nil {
			if err := d.stop(20 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	stop("kubelet")
	if byName["containerd"] != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := removeAllPods(ctx, n.l.containerdSocket()); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	stop("kube-proxy")
	if byName["kube-proxy"] != nil {
		if err := cleanupKubeProxy(n.bins); err != nil {
			errs = append(errs, err)
		}
	}
	stop("chaos-controller-manager")
	stop("kube-scheduler")
	stop("kube-controller-manager")
	stop("containerd")
	if n.Env != nil {
		if err := n.Env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the API server and etcd: %w", err))
		}
	}
	if err := Sweep(n.Dir); err != nil {
		errs = append(errs, err)
	}
	if cur, err := os.ReadFile(ipForwardFile); err == nil && len(n.ipForward) > 0 && string(cur) != string(n.ipForward) {
		if err := os.WriteFile(ipForwardFile, n.ipForward, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s to %s: %w", ipForwardFile, n.ipForward, err))
		}
	}
	if n.unlock != nil {
		n.unlock()
		n.unlock = nil
	}
	return errors.Join(errs...)
}

func criClient(socket string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("CRI client for %s: %w", socket, err)
	}
	return conn, nil
}

// criVersion asks containerd's CRI for its version: it answers once the CRI
// plugin is up.
func criVersion(ctx context.Context, socket string) error {
	conn, err := criClient(socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
	return err
}

// removeAllPods stops and removes every container and pod sandbox the CRI
// knows, so containerd tears down their network namespaces and CNI
// allocations before it stops.
func removeAllPods(ctx context.Context, socket string) error {
	conn, err := criClient(socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	var errs []error
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return fmt.Errorf("listing containers on %s: %w", socket, err)
	}
	for _, c := range cs.Containers {
		if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: 0}); err != nil {
			errs = append(errs, fmt.Errorf("stopping container %s: %w", c.Id, err))
		}
		if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); err != nil {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.Id, err))
		}
	}
	ps, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing pod sandboxes on %s: %w", socket, err))...)
	}
	for _, p := range ps.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stopping pod sandbox %s: %w", p.Id, err))
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, fmt.Errorf("removing pod sandbox %s: %w", p.Id, err))
		}
	}
	return errors.Join(errs...)
}

// Sweep removes what a node rooted at dir may have left after its harness
// died (and is a no-op after a clean Stop): runc containers in the node's
// runc root, processes whose command line names dir (the daemons, the
// containerd shims), mounts under dir (overlay roots, pod network
// namespaces, kubelet volumes), the pod bridge, the KUBE-* iptables
// chains of kube-proxy and the kubelet and the jumps to them, in both
// address families (one node runs per machine, so every KUBE-* chain is
// a node's), the pods' cgroup folders (PodCgroupParent), and dir itself.
func Sweep(dir string) error { return sweep(dir, BridgeName) }

// sweep is Sweep with the bridge to delete named ("" for none).
func sweep(dir, bridge string) error {
	if dir == "" || dir == "/" {
		return fmt.Errorf("refusing to sweep %q", dir)
	}
	l := layout{root: dir}
	var errs []error
	if _, err := os.Stat(l.runcNamespaceRoot()); err == nil {
		if err := deleteRuncContainers(l.runcNamespaceRoot()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := killAll(processesMentioning(dir)); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if err := deleteBridge(bridge); err != nil {
		errs = append(errs, err)
	}
	if bridge != "" {
		if err := removeKubeIPTables(""); err != nil {
			errs = append(errs, err)
		}
		if err := removeNodeCgroups(CgroupRoot); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("removing the node folder: %w", err))
	}
	return errors.Join(errs...)
}

// deleteRuncContainers force-deletes (SIGKILL, then remove state and
// cgroups) every container runc knows under root.
func deleteRuncContainers(root string) error {
	out, err := exec.Command("runc", "--root", root, "list", "-q").Output()
	if err != nil {
		return fmt.Errorf("runc --root %s list: %w", root, err)
	}
	var errs []error
	for _, id := range strings.Fields(string(out)) {
		if out, err := exec.Command("runc", "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete --force %s: %w: %s", id, err, out))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest
// first.
func unmountUnder(dir string) error {
	points := mountsUnder(dir)
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, mp := range points {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists this mount namespace's mount points at or below dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	return points
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deleteBridge removes the pod bridge the CNI plugin created.
func deleteBridge(bridge string) error {
	if bridge == "" {
		return nil
	}
	if _, err := os.Stat("/sys/class/net/" + bridge); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "delete", bridge).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link delete %s: %w: %s", bridge, err, out)
	}
	return nil
}

// Leftovers lists what of a node rooted at dir still exists (processes,
// mounts, the bridge, KUBE-* iptables chains and the jumps to them in
// either address family, the pods' cgroup folders, the folder): empty
// after a complete teardown.
func Leftovers(dir string) []string { return leftovers(dir, BridgeName) }

func leftovers(dir, bridge string) []string {
	var left []string
	for _, pid := range processesMentioning(dir) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		left = append(left, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	for _, mp := range mountsUnder(dir) {
		left = append(left, "mount "+mp)
	}
	if _, err := os.Stat("/sys/class/net/" + bridge); bridge != "" && err == nil {
		left = append(left, "network interface "+bridge)
	}
	if bridge != "" {
		for _, r := range kubeIPTables("") {
			left = append(left, r.String())
		}
		for _, c := range nodeCgroups(CgroupRoot) {
			left = append(left, "cgroup "+c)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		left = append(left, "folder "+dir)
	}
	return left
}
