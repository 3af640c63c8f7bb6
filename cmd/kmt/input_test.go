package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
)

// Every input that used to be ignored silently is exit 2, naming what is
// wrong, before anything starts (each case returns without starting a
// cluster: the whole table runs in well under a second).
func TestIgnoredInputsAreUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, []byte("x"), 0o600)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "baseline", "--rate", "-5"}, "--rate -5: must not be negative"},
		{[]string{"run", "baseline", "--duration", "-1s"}, "--duration -1s: must not be negative"},
		{[]string{"run", "baseline", "--drain", "-1s"}, "--drain -1s: must not be negative"},
		{[]string{"run", "baseline", "--mirror-command", ""}, "--mirror-command is empty"},
		{[]string{"run", "baseline", "--mirror-command", "  "}, "--mirror-command is empty"},
		{[]string{"run", "baseline", "--report-dir", filepath.Join(file, "sub")}, "report folder " + filepath.Join(file, "sub")},
		{[]string{"run", "baseline", "--source-bootstrap", "127.0.0.1:1", "--target-bootstrap", "127.0.0.1:1", "--mirror", "external"}, "name the same cluster (127.0.0.1:1)"},
		{[]string{"run", "baseline", "--source-bootstrap", "a:1,b:1", "--target-bootstrap", "B:1", "--mirror", "external"}, "name the same cluster"},
		{[]string{"render", "wan-partition", "--peer", "notacidr"}, `peer address "notacidr" is neither an IP nor a CIDR`},
		{[]string{"render", "wan-partition", "--start-delay", "-5s"}, "start delay -5s is negative"},
	}
	for _, c := range cases {
		code, _, stderr := cliRun(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("kmt %s: exit %d, stderr %q; want 2 saying %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

// A scenario path that is not a regular file, or is too big, is refused
// before it is read: `kmt lint /dev/zero` used to read until the kernel
// killed it, and a FIFO would block on open.
func TestScenarioFileMustBeSmallAndRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), 110_000), 0o600)
	cases := []struct{ path, want string }{
		{"/dev/zero", "not a regular file (a device)"},
		{fifo, "not a regular file (a named pipe)"},
		{dir, "not a regular file (a folder)"},
		{big, "a scenario file may have at most 1048576"},
	}
	for _, c := range cases {
		done := make(chan struct{})
		var code int
		var stderr string
		go func() { code, _, stderr = cliRun(t, "lint", c.path); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("kmt lint %s did not return within a minute", c.path)
		}
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("kmt lint %s: exit %d, stderr %q; want 2 saying %q", c.path, code, stderr, c.want)
		}
	}
}

// The first SIGINT cancels (every phase then ends with an incomplete
// report); the second exits at once. Real signals, sent to this process.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	var cancelled, exited atomic.Int32
	var errb testkit.SyncBuffer
	stop := watchSignals(func() { cancelled.Add(1) }, &errb, func() { exited.Add(1) })
	defer stop()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen within 10s", what)
			}
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	waitFor("cancel after the first SIGINT", func() bool { return cancelled.Load() == 1 })
	if exited.Load() != 0 {
		t.Fatal("the first signal exited")
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	waitFor("exit after the second signal", func() bool { return exited.Load() == 1 })
	if s := errb.String(); !strings.Contains(s, "again to exit at once") || !strings.Contains(s, "exiting now") {
		t.Errorf("stderr %q: want both signals explained", s)
	}
}
