package kafkadist

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCommandKeepsTempFilesInTheJVMFolder: kmt's JVMs write no
// hsperfdata file and unpack native libraries (snappy-java) into their own
// folder, which the caller removes, not into /tmp where they outlived every
// run (found as /tmp/snappy-1.1.10-*-libsnappyjava.so after make test).
func TestCommandKeepsTempFilesInTheJVMFolder(t *testing.T) {
	dir := t.TempDir()
	d := &Dist{Libs: filepath.Join(dir, "libs")}
	cmd, err := d.Command(JVM{Main: "kafka.Kafka", LogFile: filepath.Join(dir, "broker", "server.log")})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "broker", "tmp")
	for _, want := range []string{"-XX:-UsePerfData", "-Djava.io.tmpdir=" + tmp} {
		if !slices.Contains(cmd.Args, want) {
			t.Errorf("java args %q lack %s", cmd.Args, want)
		}
	}
	if fi, err := os.Stat(tmp); err != nil || !fi.IsDir() {
		t.Errorf("the JVM's temp folder %s was not created: %v", tmp, err)
	}
	// Neither a log file nor a config folder: the JVM's default, no folder made up.
	cmd, err = d.Command(JVM{Main: "kafka.Kafka"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cmd.Args {
		if strings.HasPrefix(a, "-Djava.io.tmpdir=") {
			t.Errorf("java.io.tmpdir set without a JVM folder: %s", a)
		}
	}
}
