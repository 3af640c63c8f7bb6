package agent

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The command a pause runs in a pod freezes every process of the container
// and resumes them by itself after the heal delay, with nobody sending
// SIGCONT (the agent gone). Run for real in a PID namespace of its own
// (unshare), where `kill -1` reaches only that namespace's processes, as in
// a container: a sleeper is stopped (T), then running again (S).
func TestFreezeCommandHealsItself(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a PID namespace needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	script := "sleep 30 & t=$!\n" + freezeCommand(time.Second) +
		"\nsleep 0.3; a=$(ps -o stat= -p $t); sleep 1.7; b=$(ps -o stat= -p $t); kill $t; echo $a $b"
	out, err := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("unshare: %v: %s", err, out)
	}
	states := strings.Fields(string(out))
	if len(states) != 2 || !strings.HasPrefix(states[0], "T") || strings.HasPrefix(states[1], "T") {
		t.Fatalf("process states %q, want stopped (T) then running again", out)
	}
}

func TestFreezeCommandRoundsTheDelayUp(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "sleep 1;", 1500 * time.Millisecond: "sleep 2;", 90 * time.Second: "sleep 90;"} {
		if c := freezeCommand(d); !strings.Contains(c, want) {
			t.Errorf("freezeCommand(%v) = %q, want %q", d, c, want)
		}
	}
}
