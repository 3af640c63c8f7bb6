package health

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestParseCPUStat reads both kernels' formats: v2's throttled_usec and
// v1's throttled_time (nanoseconds); a file without nr_throttled is not a
// CPU controller's.
func TestParseCPUStat(t *testing.T) {
	v2 := "usage_usec 1000\nuser_usec 800\nsystem_usec 200\nnr_periods 40\nnr_throttled 7\nthrottled_usec 350000\nnr_bursts 0\nburst_usec 0\n"
	v1 := "nr_periods 20\nnr_throttled 19\nthrottled_time 1367602557\nnr_bursts 0\nburst_time 0\n"
	if got, ok := parseCPUStat([]byte(v2)); !ok || got != (Throttling{Periods: 40, Throttled: 7, Seconds: 0.35}) {
		t.Errorf("v2: %+v %v", got, ok)
	}
	if got, ok := parseCPUStat([]byte(v1)); !ok || got.Periods != 20 || got.Throttled != 19 || got.Seconds != 1.367602557 {
		t.Errorf("v1: %+v %v", got, ok)
	}
	if _, ok := parseCPUStat([]byte("usage_usec 1000\nuser_usec 800\n")); ok {
		t.Error("a cpu.stat without nr_throttled (v2 without the cpu controller) was taken")
	}
}

// TestCPUStatFiles finds the process's own cgroup and every ancestor, for
// v2 (also the hybrid "unified" mount) and v1's cpu controller, and skips
// the other controllers' lines and missing files.
func TestCPUStatFiles(t *testing.T) {
	root := t.TempDir()
	old := cgroupRoot
	cgroupRoot = root
	t.Cleanup(func() { cgroupRoot = old })
	for _, d := range []string{"kubepods/pod1/ctr", "kubepods/pod1", "kubepods", "", "cpu,cpuacct/user/kmt", "cpu,cpuacct"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, "cpu.stat"), []byte("nr_periods 1\nnr_throttled 0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := cpuStatFiles([]byte("0::/kubepods/pod1/ctr\n"))
	want := []string{"kubepods/pod1/ctr", "kubepods/pod1", "kubepods", ""}
	if len(got) != len(want) {
		t.Fatalf("v2: %q", got)
	}
	for i, w := range want {
		if got[i] != filepath.Join(root, w, "cpu.stat") {
			t.Errorf("v2 file %d: %s, want %s", i, got[i], filepath.Join(root, w, "cpu.stat"))
		}
	}
	got = cpuStatFiles([]byte("9:memory:/x\n4:cpu,cpuacct:/user/kmt\n2:cpuset:/\n"))
	if len(got) != 2 || got[0] != filepath.Join(root, "cpu,cpuacct/user/kmt/cpu.stat") || got[1] != filepath.Join(root, "cpu,cpuacct/cpu.stat") {
		t.Errorf("v1: %q", got)
	}
}

// TestWorstThrottling takes the cgroup that stopped the process most
// between two readings and ignores counters that appeared or went back.
func TestWorstThrottling(t *testing.T) {
	before := map[string]Throttling{
		"a": {Periods: 10, Throttled: 1, Seconds: 0.1, Cgroup: "a"},
		"b": {Periods: 10, Throttled: 2, Seconds: 0.2, Cgroup: "b"},
		"c": {Periods: 50, Throttled: 40, Seconds: 9, Cgroup: "c"},
	}
	after := map[string]Throttling{
		"a": {Periods: 110, Throttled: 4, Seconds: 0.4, Cgroup: "a"},
		"b": {Periods: 110, Throttled: 9, Seconds: 0.9, Cgroup: "b"},
		"c": {Periods: 5, Throttled: 1, Seconds: 1, Cgroup: "c"},    // reset
		"d": {Periods: 100, Throttled: 90, Seconds: 5, Cgroup: "d"}, // new
	}
	got := worstThrottling(before, after)
	if got.Cgroup != "b" || got.Periods != 100 || got.Throttled != 7 {
		t.Fatalf("worst %+v, want b: 7 of 100", got)
	}
}

// TestThrottledByRealQuota runs a child process that burns two cores'
// worth of CPU for 1.5 s inside a real cgroup with a quota of a fifth of a
// core (20 ms per 100 ms period): its meter reports most periods
// throttled, and Assess calls it saturated for that reason. The control
// child, in a cgroup without a quota, is never throttled. Needs root and a
// writable cgroup file system (v1's cpu controller or v2 with cpu enabled).
func TestThrottledByRealQuota(t *testing.T) {
	if os.Getenv("KMT_THROTTLE_CHILD") != "" {
		throttleChild()
		return
	}
	quota, ok := newQuotaCgroup(t, 20000)
	if !ok {
		t.Skip("cannot create a cgroup with a CPU quota here (needs root and a writable cgroup file system)")
	}
	free, _ := newQuotaCgroup(t, -1)
	th := runThrottleChild(t, quota)
	a := Assess(Sample{CPU: CPU{Cores: 2, Throttling: th}, ReadLagSeconds: -1}, DefaultLimits)
	t.Logf("quota 20 ms per 100 ms: %+v; %q", th, a.Reasons)
	if th.Throttled < 8 || th.Throttled > th.Periods || th.Seconds <= 0 {
		t.Errorf("throttling %+v: want most of about 15 periods throttled", th)
	}
	if len(a.Reasons) != 1 || !strings.Contains(a.Reasons[0], "ran out of its CPU quota") {
		t.Errorf("Assess: %+v", a)
	}
	if th := runThrottleChild(t, free); th.Throttled != 0 {
		t.Errorf("without a quota: %+v, want no throttled period", th)
	}
}

// quotaCgroup is a cgroup made for a test: dir holds its files, procs the
// file a pid is written to.
type quotaCgroup struct{ dir, procs string }

// newQuotaCgroup makes a cgroup with quotaUs of CPU per 100 ms period (-1:
// no quota), v1's cpu controller first, then v2; removed at cleanup.
func newQuotaCgroup(t *testing.T, quotaUs int) (quotaCgroup, bool) {
	name := fmt.Sprintf("kmt-throttle-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	try := func(dir, procs, quotaFile, quota string) (quotaCgroup, bool) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return quotaCgroup{}, false
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
		if quotaUs >= 0 {
			if err := os.WriteFile(filepath.Join(dir, quotaFile), []byte(quota), 0o644); err != nil {
				return quotaCgroup{}, false
			}
		}
		return quotaCgroup{dir: dir, procs: filepath.Join(dir, procs)}, true
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		if c, ok := try(filepath.Join("/sys/fs/cgroup/cpu", name), "cgroup.procs", "cpu.cfs_quota_us", strconv.Itoa(quotaUs)); ok {
			return c, true
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && strings.Contains(string(b), "cpu") {
		return try(filepath.Join("/sys/fs/cgroup", name), "cgroup.procs", "cpu.max", fmt.Sprintf("%d 100000", quotaUs))
	}
	return quotaCgroup{}, false
}

// runThrottleChild starts this test binary as the burning child, moves it
// into cg before it starts its meter, and returns what the meter saw.
func runThrottleChild(t *testing.T, cg quotaCgroup) Throttling {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestThrottledByRealQuota$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "KMT_THROTTLE_CHILD=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cg.procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("move the child into %s: %v", cg.dir, err)
	}
	_, _ = in.Write([]byte("go\n"))
	_ = in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if j, ok := strings.CutPrefix(line, "THROTTLING "); ok {
			var th Throttling
			if err := json.Unmarshal([]byte(j), &th); err != nil {
				t.Fatal(err)
			}
			return th
		}
	}
	t.Fatalf("child printed no THROTTLING line:\n%s", out.String())
	return Throttling{}
}

// throttleChild waits for its parent to move it into the cgroup, then
// burns two threads for 1.5 s under a CPU meter and prints its throttling.
func throttleChild() {
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	m := StartCPU(100 * time.Millisecond)
	stop := time.Now().Add(1500 * time.Millisecond)
	done := make(chan struct{})
	for range 2 {
		go func() {
			runtime.LockOSThread()
			for time.Now().Before(stop) {
			}
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	b, _ := json.Marshal(m.Stop().Throttling)
	fmt.Printf("THROTTLING %s\n", b)
}
