package node

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestKafkaImageSpecHasTheJREsLibraries: the Kafka image carries the JRE's
// own files, the system libraries its binaries load (the dynamic loader and
// libc among them), the jars, and java on PATH.
func TestKafkaImageSpecHasTheJREsLibraries(t *testing.T) {
	if _, err := os.Stat(filepath.Join(DebianJRE, "bin", "java")); err != nil {
		t.Skipf("no Debian JRE at %s (apt-get install openjdk-17-jre-headless)", DebianJRE)
	}
	libs := t.TempDir()
	if err := os.WriteFile(filepath.Join(libs, "kafka_2.13-4.3.0.jar"), []byte("jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := KafkaImageSpec(DebianJRE, libs)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range spec.Files {
		paths = append(paths, f.Path)
	}
	for _, want := range []string{
		filepath.Join(DebianJRE, "bin", "java"),
		filepath.Join(DebianJRE, "lib", "server", "libjvm.so"),
		filepath.Join(DebianJRE, "lib", "modules"),
		"/lib64/ld-linux-x86-64.so.2",
		"/lib/x86_64-linux-gnu/libc.so.6",
		filepath.Join(KafkaLibsInImage, "kafka_2.13-4.3.0.jar"),
	} {
		if !slices.Contains(paths, want) {
			t.Errorf("image lacks %s", want)
		}
	}
	for _, p := range paths {
		if filepath.Dir(p) == filepath.Join(DebianJRE, "jmods") || p == filepath.Join(DebianJRE, "bin", "javac") {
			t.Errorf("image carries JDK-only %s", p)
		}
	}
	if spec.Links[KafkaJavaInImage] != filepath.Join(DebianJRE, "bin", "java") {
		t.Errorf("links = %v, want %s -> the JRE's java", spec.Links, KafkaJavaInImage)
	}
}
