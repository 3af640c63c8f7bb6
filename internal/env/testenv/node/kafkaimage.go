package node

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// KafkaImage runs Apache Kafka's JVM programs (broker, storage tool,
// MirrorMaker 2) from the Kafka libs kmt assembles from Maven Central,
// on the machine's Debian JRE.
const KafkaImage = "kmt.local/kafka:dev"

// Paths inside the Kafka image.
const (
	KafkaLibsInImage = "/opt/kafka/libs"
	KafkaJavaInImage = "/usr/bin/java"
)

// DebianJRE is the JRE Debian's openjdk-17-jre-headless installs (Kafka 4
// brokers need Java 17+).
const DebianJRE = "/usr/lib/jvm/java-17-openjdk-amd64"

// jreSkip are the JDK parts a JRE does not need at run time.
var jreSkip = map[string]bool{"jmods": true, "include": true, "docs": true, "man": true, "demo": true, "src.zip": true}

// KafkaImageSpec is an image holding the JRE at jreDir (its own files, with
// symlinks into /etc resolved, plus every shared library its binaries load,
// found with ldd) and the jars of libsDir under /opt/kafka/libs. The
// entrypoint is java; a pod's args pick the main class, e.g.
// ["-cp", "/opt/kafka/libs/*", "kafka.Kafka", "/etc/kafka/server.properties"].
func KafkaImageSpec(jreDir, libsDir string) (ImageSpec, error) {
	var files []ImageFile
	var elfs []string
	err := filepath.WalkDir(jreDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(jreDir, p)
		if d.IsDir() {
			if jreSkip[rel] {
				return filepath.SkipDir
			}
			return nil
		}
		if jreSkip[rel] || (strings.HasPrefix(rel, "bin/") && rel != "bin/java") {
			return nil
		}
		st, err := os.Stat(p) // follows Debian's symlinks into /etc
		if err != nil || !st.Mode().IsRegular() {
			return nil // a dangling link (an optional config) is left out
		}
		files = append(files, ImageFile{Path: p, Source: p, Mode: int64(st.Mode().Perm())})
		if rel == "bin/java" || strings.HasSuffix(p, ".so") {
			elfs = append(elfs, p)
		}
		return nil
	})
	if err != nil {
		return ImageSpec{}, fmt.Errorf("reading the JRE at %s: %w (install Debian's openjdk-17-jre-headless)", jreDir, err)
	}
	if len(elfs) == 0 {
		return ImageSpec{}, fmt.Errorf("no bin/java under %s (install Debian's openjdk-17-jre-headless)", jreDir)
	}
	libs, err := sharedLibraries(jreDir, elfs)
	if err != nil {
		return ImageSpec{}, err
	}
	for _, l := range libs {
		files = append(files, ImageFile{Path: l, Source: l, Mode: 0o755})
	}
	jars, err := filepath.Glob(filepath.Join(libsDir, "*.jar"))
	if err != nil || len(jars) == 0 {
		return ImageSpec{}, fmt.Errorf("no Kafka jars in %s (the realkafka scripts assemble them: internal/env/kafkadist)", libsDir)
	}
	for _, j := range jars {
		files = append(files, ImageFile{Path: filepath.Join(KafkaLibsInImage, filepath.Base(j)), Source: j, Mode: 0o644})
	}
	java := filepath.Join(jreDir, "bin", "java")
	files = append(files,
		ImageFile{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		ImageFile{Path: "/etc/group", Data: []byte("root:x:0:\nnonroot:x:65532:\n")},
	)
	return ImageSpec{
		Ref:   KafkaImage,
		Files: files,
		Links: map[string]string{KafkaJavaInImage: java},
		Dirs:  []string{"/tmp", "/home/nonroot", "/var/lib/kafka"},
		// The JRE finds its own libraries by $ORIGIN; the system ones are
		// where ldd found them here, which the loader searches without an
		// ld.so.cache only when told.
		Env:        []string{"JAVA_HOME=" + jreDir, "LD_LIBRARY_PATH=" + libraryDirs(libs)},
		Entrypoint: []string{KafkaJavaInImage},
		User:       nonrootUser,
		WorkingDir: "/tmp",
	}, nil
}

var lddPath = regexp.MustCompile(`(?:=>\s+)?(/\S+)\s+\(0x`)

// sharedLibraries is the set of libraries (and the dynamic loader) outside
// skipDir ("" skips nothing) that ldd reports for the ELF files, sorted.
func sharedLibraries(skipDir string, elfs []string) ([]string, error) {
	set := map[string]bool{}
	for _, e := range elfs {
		out, err := exec.Command("ldd", e).Output()
		if err != nil {
			continue // not a dynamic ELF (ldd says so and fails)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			m := lddPath.FindStringSubmatch(sc.Text())
			if m == nil || (skipDir != "" && strings.HasPrefix(m[1], skipDir+"/")) {
				continue
			}
			set[m[1]] = true
		}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("ldd found no shared libraries for %s: is ldd (libc-bin) installed?", elfs[0])
	}
	libs := make([]string, 0, len(set))
	for l := range set {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	return libs, nil
}

// libraryDirs is the folders of libs, colon-separated, in first-seen order.
func libraryDirs(libs []string) string {
	seen := map[string]bool{}
	var dirs []string
	for _, l := range libs {
		if d := filepath.Dir(l); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return strings.Join(dirs, ":")
}
