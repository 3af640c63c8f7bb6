// Package kafkadist finds an Apache Kafka distribution (the user's unpacked
// download, or the libs/ folder kmt assembles from Maven Central into its
// cache) and builds the `java -cp 'libs/*' <main class>` commands that run
// brokers, the storage formatter, the perf tools and MirrorMaker 2 from it.
//
// Every JVM it starts gets a small heap (two clusters and a mirror must fit
// on a 2-core machine beside kmt), its own log4j2 configuration writing to a
// file kmt chose (the report folder), and its own process group so that kmt
// can signal the JVM and everything it forks at once.
package kafkadist

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/cachedir"
)

// Version is the Apache Kafka release kmt assembles when the user has none:
// the newest 4.x whose jars (connect-mirror included) resolve from Maven
// Central here (4.4.0's connect-mirror did not, 2026-11-30).
const Version = "4.3.0"

// EnvHome names an unpacked Kafka distribution (the folder holding libs/).
const EnvHome = "KMT_KAFKA_HOME"

// EnvCacheDir overrides the cache root (default <user cache dir>/kmt).
const EnvCacheDir = cachedir.Env

//go:embed kafka-libs.sh
var libsScript []byte

// Dist is a usable distribution: a folder of jars.
type Dist struct {
	Libs    string // folder with the jars (libs/)
	Version string // kafka-clients version read from the jar names; "" if unknown
}

// Find returns the distribution to use: home (from --kafka-home) when set,
// else $KMT_KAFKA_HOME, else the cached Maven-assembled one, assembling it
// first when missing (minutes on a cold Maven cache).
func Find(ctx context.Context, home string, log *slog.Logger) (*Dist, error) {
	if home == "" {
		home = os.Getenv(EnvHome)
	}
	if home != "" {
		return FromHome(home)
	}
	return Ensure(ctx, Version, log)
}

// FromHome checks that home is an unpacked Kafka distribution.
func FromHome(home string) (*Dist, error) {
	libs := filepath.Join(home, "libs")
	if _, err := os.Stat(filepath.Join(home, "kafka_2.13")); err == nil {
		// Someone pointed at libs/ itself: accept it.
		libs = home
	}
	d := &Dist{Libs: libs}
	v, err := d.readVersion()
	if err != nil {
		return nil, fmt.Errorf("kafka home %s: %w; point --kafka-home (or %s) at an unpacked Apache Kafka (the folder with bin/ and libs/), or leave it unset to have kmt assemble one from Maven Central", home, err, EnvHome)
	}
	d.Version = v
	return d, nil
}

// readVersion finds the broker jar (kafka_2.13-<v>.jar) and returns <v>.
func (d *Dist) readVersion() (string, error) {
	m, err := filepath.Glob(filepath.Join(d.Libs, "kafka_2.1?-*.jar"))
	if err != nil || len(m) == 0 {
		return "", fmt.Errorf("no kafka_2.13-*.jar in %s", d.Libs)
	}
	for _, f := range m {
		b := filepath.Base(f)
		if strings.Contains(b, "-test") || strings.Contains(b, "-sources") || strings.Contains(b, "-javadoc") {
			continue
		}
		v := strings.TrimSuffix(b[strings.Index(b, "-")+1:], ".jar")
		return v, nil
	}
	return "", fmt.Errorf("no kafka_2.13-<version>.jar in %s", d.Libs)
}

// CacheRoot is kmt's cache folder (internal/env/cachedir).
func CacheRoot() (string, error) { return cachedir.Root() }

// CachedLibs is where Ensure puts version's libs/.
func CachedLibs(version string) (string, error) {
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "kafka-"+version, "libs"), nil
}

// Ensure returns the cached libs/ of version, assembling it with Maven (the
// embedded kafka-libs.sh, the same script `make` runs) when missing. The
// script builds in a temporary folder and renames it into place, so an
// interrupted build is simply redone.
func Ensure(ctx context.Context, version string, log *slog.Logger) (*Dist, error) {
	libs, err := CachedLibs(version)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(libs, ".kmt-complete")); err == nil {
		return &Dist{Libs: libs, Version: version}, nil
	}
	root, _ := CacheRoot()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create kmt cache %s: %w (set %s to a writable folder)", root, err, EnvCacheDir)
	}
	if log != nil {
		log.Info("assembling Apache Kafka from Maven Central (once; cached)", "version", version, "into", libs)
	}
	script, err := os.CreateTemp(root, ".kafka-libs-*.sh")
	if err != nil {
		return nil, fmt.Errorf("write the Kafka assembly script into %s: %w", root, err)
	}
	defer os.Remove(script.Name())
	if _, err := script.Write(libsScript); err != nil {
		script.Close()
		return nil, fmt.Errorf("write %s: %w", script.Name(), err)
	}
	script.Close()
	cmd := exec.CommandContext(ctx, "bash", script.Name(), version)
	cmd.Env = append(os.Environ(), EnvCacheDir+"="+root)
	// Its own process group, so a cancel reaches Maven's JVM too (killing
	// bash alone would leave mvn downloading); SIGTERM first lets the
	// script's EXIT trap remove its half-built folder.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("assemble Apache Kafka %s from Maven Central: %w: %s (or pass --kafka-home / %s with an unpacked Kafka)", version, err, strings.TrimSpace(stderr.String()), EnvHome)
	}
	got := strings.TrimSpace(out.String())
	if got != libs {
		return nil, fmt.Errorf("assemble Apache Kafka %s: script put libs in %q, expected %q", version, got, libs)
	}
	return &Dist{Libs: libs, Version: version}, nil
}

// JVM describes one Java process to run from the distribution.
type JVM struct {
	Main    string   // main class, e.g. kafka.Kafka
	Args    []string // program arguments
	Heap    string   // -Xmx, e.g. "512m"; default 256m
	LogFile string   // log4j2 output; "" = none written (errors only on stderr)
	// ConfDir receives the generated log4j2 properties; default: LogFile's folder.
	ConfDir string
	Props   []string // extra -D / -XX options
	// QuickStart trades peak speed for start-up: C1 only and the serial
	// collector (fewer compiler and GC threads competing for 2 cores).
	QuickStart bool
}

// Command builds the java command for j. The process gets its own process
// group (kill(-pgid) reaches it and anything it forks) and gets SIGKILL from
// the kernel when the kmt thread that started it dies (Pdeathsig): a kmt
// killed with SIGKILL leaves no JVM behind.
func (d *Dist) Command(j JVM) (*exec.Cmd, error) {
	if j.Main == "" {
		return nil, errors.New("kafkadist: JVM.Main is empty")
	}
	heap := j.Heap
	if heap == "" {
		heap = "256m"
	}
	args := []string{"-Xms64m", "-Xmx" + heap}
	if j.QuickStart {
		args = append(args, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
	} else {
		// Kafka's own defaults (kafka-run-class.sh).
		args = append(args, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")
	}
	args = append(args, "-XX:+ExitOnOutOfMemoryError", "-XX:MaxDirectMemorySize=256m", "-Djava.awt.headless=true",
		// No /tmp/hsperfdata_<user>/<pid> file per JVM (jps/jstat then do
		// not see kmt's JVMs; jcmd <pid> still works).
		"-XX:-UsePerfData")
	if tmp := jvmTmpDir(j); tmp != "" {
		// snappy-java and others unpack native libraries into
		// java.io.tmpdir and never delete them: keep them in the JVM's own
		// folder, which the caller removes, instead of /tmp.
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return nil, fmt.Errorf("kafkadist: create the JVM's temp folder %s: %w", tmp, err)
		}
		args = append(args, "-Djava.io.tmpdir="+tmp)
	}
	if j.LogFile != "" {
		conf, err := writeLog4j2(j)
		if err != nil {
			return nil, err
		}
		args = append(args, "-Dlog4j2.configurationFile="+conf)
	}
	args = append(args, j.Props...)
	args = append(args, "-cp", filepath.Join(d.Libs, "*"), j.Main)
	args = append(args, j.Args...)
	cmd := exec.Command("java", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// jvmTmpDir is the JVM's java.io.tmpdir: "tmp" in its config or log
// folder, or "" (the JVM's default) when it has neither.
func jvmTmpDir(j JVM) string {
	dir := j.ConfDir
	if dir == "" && j.LogFile != "" {
		dir = filepath.Dir(j.LogFile)
	}
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "tmp")
}

// writeLog4j2 writes a properties-format log4j2 config (the YAML format needs
// a Jackson jar MirrorMaker's classpath lacks) sending everything at INFO to
// j.LogFile, with Kafka's chattiest loggers at WARN.
func writeLog4j2(j JVM) (string, error) {
	dir := j.ConfDir
	if dir == "" {
		dir = filepath.Dir(j.LogFile)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("kafkadist: create log config folder %s: %w", dir, err)
	}
	base := strings.TrimSuffix(filepath.Base(j.LogFile), filepath.Ext(j.LogFile))
	path := filepath.Join(dir, base+".log4j2.properties")
	conf := fmt.Sprintf(`status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = %s
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.utils.name = org.apache.kafka.common.utils.AppInfoParser
logger.utils.level = WARN
`, j.LogFile)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return "", fmt.Errorf("kafkadist: write %s: %w", path, err)
	}
	return path, nil
}
