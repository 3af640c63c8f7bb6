// Package testenv starts a real Kubernetes API server (kube-apiserver built
// from the Go module proxy, Debian's etcd) through controller-runtime's
// envtest, with the Chaos Mesh and prometheus-operator CRDs installed, so
// tests can prove that generated objects and charts are accepted by a real
// API server, CRD schema validation included.
//
// No prebuilt binaries can be downloaded on the machines this project runs
// on, so the API server is compiled from source: a throwaway module requires
// k8s.io/kubernetes at KubernetesVersion and replaces every k8s.io staging
// module with its published v0.Y.Z twin (k8s.io/kubernetes's own go.mod
// points them at ./staging, which a module download does not resolve). The
// binary is cached per version in AssetsDir, which survives between runs on
// one machine; a missing cache costs one build (about 4 minutes cold on 2
// cores, seconds when the Go build cache is warm).
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/cachedir"
)

// Versions of the parts. KubernetesVersion matches go.mod's k8s.io/api
// v0.37.2. The Chaos Mesh CRDs come from the newest chaos-mesh main-module
// pseudo-version the module proxy serves (the exact commit of go.mod's
// chaos-mesh/api pseudo-version is not served; its workflows, networkchaos,
// podchaos, stresschaos and timechaos CRDs were compared with tag v2.8.3,
// the version kind/ pins, and differ only in the controller-gen version
// annotation); prometheus-operator's CRDs
// from the newest tagged main module the proxy serves.
const (
	KubernetesVersion         = "v1.37.2"
	ChaosMeshModule           = "github.com/chaos-mesh/chaos-mesh"
	ChaosMeshVersion          = "v0.9.1-0.20260902003049-47411975a8cb"
	PrometheusOperatorModule  = "github.com/prometheus-operator/prometheus-operator"
	PrometheusOperatorVersion = "v0.85.0"
)

// Binary names inside AssetsDir, as envtest expects them.
const (
	APIServerBinary = "kube-apiserver"
	EtcdBinary      = "etcd"
	KubectlBinary   = "kubectl"
)

// EnvCacheDir overrides where the binaries are cached.
const EnvCacheDir = cachedir.Env

// AssetsDir is the folder holding kube-apiserver, etcd and kubectl of
// KubernetesVersion (see VersionDir).
func AssetsDir() (string, error) { return VersionDir(KubernetesVersion) }

// VersionDir is the per-version folder holding the Kubernetes binaries of
// version: $KMT_CACHE_DIR/k8s-<ver>, else <user cache dir>/kmt/k8s-<ver>
// ($XDG_CACHE_HOME or ~/.cache on Linux).
func VersionDir(version string) (string, error) {
	base, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "k8s-"+version), nil
}

// CacheDir is kmt's cache folder for heavy builds (internal/env/cachedir).
func CacheDir() (string, error) { return cachedir.Root() }

// EnsureAssets makes sure AssetsDir holds a kube-apiserver of
// KubernetesVersion and an etcd, building or installing what is missing,
// and returns the folder.
func EnsureAssets(ctx context.Context, logger *slog.Logger) (string, error) {
	return EnsureBinaries(ctx, logger, KubernetesVersion, APIServerBinary)
}

// EnsureBinaries makes sure VersionDir(version) holds the named
// k8s.io/kubernetes commands (kube-apiserver, kubelet, ...) built at version,
// plus etcd (and kubectl when the machine has one), building or installing
// what is missing, and returns the folder. Concurrent callers (parallel test
// binaries) are serialised by a lock file, so only one builds.
func EnsureBinaries(ctx context.Context, logger *slog.Logger, version string, commands ...string) (string, error) {
	if logger == nil {
		logger = slog.Default()
	}
	dir, err := VersionDir(version)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the assets folder %s: %w", dir, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	var missing []string
	for _, c := range commands {
		if !executable(filepath.Join(dir, c)) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		start := time.Now()
		logger.Info("building Kubernetes binaries from the Go module proxy (cached afterwards; minutes when cold)", "version", version, "binaries", missing, "into", dir)
		if err := buildKubernetes(ctx, version, dir, missing); err != nil {
			return "", err
		}
		logger.Info("Kubernetes binaries built", "binaries", missing, "took", time.Since(start).Round(time.Second))
	}
	if err := linkEtcd(ctx, logger, filepath.Join(dir, EtcdBinary)); err != nil {
		return "", err
	}
	// kubectl is optional for envtest; link it when the machine has one so
	// callers can use ControlPlane.KubeCtl().
	if k, err := exec.LookPath(KubectlBinary); err == nil {
		_ = relink(k, filepath.Join(dir, KubectlBinary))
	}
	return dir, nil
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// LockFile takes an exclusive flock on path (created if missing), waiting
// until it is free or ctx ends, and returns the unlock function.
func LockFile(ctx context.Context, path string) (func(), error) { return lockFile(ctx, path) }

// lockFile takes an exclusive flock, polling so ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for another process building into %s: %w", filepath.Dir(path), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// goCommand is a go command that ends with ctx and also with this process:
// a test binary that hits its -timeout exits without cancelling anything,
// and without the parent-death signal its minutes-long build went on as an
// orphan, racing the next test's build of the same binaries.
func goCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// goEnv is the environment for go commands run outside this repository: no
// workspace, module mode on, and the caller's GOFLAGS dropped (a -mod=vendor
// or -race there would break or slow the throwaway builds).
func goEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOFLAGS=") || strings.HasPrefix(kv, "GOWORK=") || strings.HasPrefix(kv, "GO111MODULE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{"GOWORK=off", "GO111MODULE=on"}, extra...)...)
}

// ModuleInfo is the part of `go mod download -json` kmt reads.
type ModuleInfo struct {
	Path, Version, Dir, GoMod, Error string
}

// DownloadModule fetches path@version through the module proxy into the
// module cache and returns where it is.
func DownloadModule(ctx context.Context, path, version string) (ModuleInfo, error) {
	tmp, err := os.MkdirTemp("", "kmt-moddl-")
	if err != nil {
		return ModuleInfo{}, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goTool(), "mod", "download", "-json", path+"@"+version)
	cmd.Dir = tmp
	cmd.Env = goEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var mi ModuleInfo
	if err := json.Unmarshal(out, &mi); err != nil {
		return mi, fmt.Errorf("go mod download %s@%s: %v %s (is the Go module proxy reachable?)", path, version, runErr, stderr.String())
	}
	if mi.Error != "" || runErr != nil {
		return mi, fmt.Errorf("go mod download %s@%s: %s %v (is the Go module proxy reachable, and does it serve this version?)", path, version, mi.Error, runErr)
	}
	return mi, nil
}

var stagingRE = regexp.MustCompile(`^\s*(k8s\.io/[A-Za-z0-9._-]+)\s+=>\s+\./staging/`)

// stagingModules lists the k8s.io modules that k8s.io/kubernetes's go.mod
// replaces with its ./staging folders.
func stagingModules(goMod []byte) []string {
	var mods []string
	sc := bufio.NewScanner(bytes.NewReader(goMod))
	for sc.Scan() {
		if m := stagingRE.FindStringSubmatch(sc.Text()); m != nil {
			mods = append(mods, m[1])
		}
	}
	return mods
}

// throwawayGoMod writes the go.mod of the build module: k8s.io/kubernetes
// at version, every staging module at its v0.Y.Z twin.
func throwawayGoMod(version string, staging []string) (string, error) {
	v := strings.TrimPrefix(version, "v")
	parts := strings.SplitN(v, ".", 2)
	if len(parts) != 2 || parts[0] != "1" || strings.Count(v, ".") != 2 {
		return "", fmt.Errorf("kubernetes version %q is not of the form v1.Y.Z", version)
	}
	stagingVersion := "v0." + parts[1]
	var b strings.Builder
	fmt.Fprintf(&b, "module kmt.dev/kubernetes-build\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", version)
	for _, m := range staging {
		fmt.Fprintf(&b, "\t%s => %s %s\n", m, m, stagingVersion)
	}
	b.WriteString(")\n")
	return b.String(), nil
}

// buildKubernetes builds k8s.io/kubernetes/cmd/<command> at version for
// every command into dir, in one go build (the packages they share compile
// once).
func buildKubernetes(ctx context.Context, version, dir string, commands []string) error {
	mi, err := DownloadModule(ctx, "k8s.io/kubernetes", version)
	if err != nil {
		return err
	}
	goMod, err := os.ReadFile(mi.GoMod)
	if err != nil {
		return fmt.Errorf("reading k8s.io/kubernetes's go.mod: %w", err)
	}
	staging := stagingModules(goMod)
	if len(staging) == 0 {
		return fmt.Errorf("k8s.io/kubernetes %s's go.mod (%s) lists no ./staging replacements: the build recipe needs updating", version, mi.GoMod)
	}
	mod, err := throwawayGoMod(version, staging)
	if err != nil {
		return err
	}
	// A build killed with its parent (a `go test` that hit its -timeout
	// panics without running defers) leaves its work folder behind; the
	// caller holds this version's lock, so any folder of this version is
	// such a leftover.
	prefix := "kubernetes-build-" + version + "-"
	if old, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), prefix+"*")); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	work, err := os.MkdirTemp(filepath.Dir(dir), prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	// Build into the work folder (beside dir, so a rename moves the result)
	// and move each binary in afterwards: a killed build never leaves a
	// half-written binary under its real name.
	partial := filepath.Join(work, "bin")
	args := []string{"build", "-o", partial + string(filepath.Separator)}
	for _, c := range commands {
		args = append(args, "k8s.io/kubernetes/cmd/"+c)
	}
	cmd := goCommand(ctx, args...)
	cmd.Dir = work
	// -mod=mod lets the go command write go.sum for the throwaway module.
	cmd.Env = goEnv("GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s %s in %s failed: %w\n%s", strings.Join(commands, ", "), version, work, err, tail(output.String(), 4000))
	}
	for _, c := range commands {
		if err := os.Rename(filepath.Join(partial, c), filepath.Join(dir, c)); err != nil {
			return fmt.Errorf("moving the built %s into %s: %w", c, dir, err)
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// linkEtcd puts etcd into the assets folder, installing Debian's
// etcd-server package when the machine has none.
func linkEtcd(ctx context.Context, logger *slog.Logger, dst string) error {
	src, err := exec.LookPath(EtcdBinary)
	if err != nil {
		logger.Info("etcd not found; installing Debian's etcd-server package")
		if err := aptInstall(ctx, "etcd-server"); err != nil {
			return fmt.Errorf("etcd is missing and could not be installed: %w (install it with `apt-get install etcd-server`, or put an etcd binary in %s)", err, filepath.Dir(dst))
		}
		if src, err = exec.LookPath(EtcdBinary); err != nil {
			return fmt.Errorf("etcd-server installed but no etcd on PATH: %w", err)
		}
	}
	return relink(src, dst)
}

func aptInstall(ctx context.Context, pkg string) error {
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 2000))
		}
		return nil
	}
	if err := run("install", "-y", "--no-install-recommends", pkg); err == nil {
		return nil
	}
	// The package lists may be missing or stale on a fresh machine.
	if err := run("update"); err != nil {
		return err
	}
	return run("install", "-y", "--no-install-recommends", pkg)
}

// relink makes dst a symlink to src (replacing whatever dst was).
func relink(src, dst string) error {
	if cur, err := os.Readlink(dst); err == nil && cur == src {
		return nil
	}
	_ = os.Remove(dst)
	if err := os.Symlink(src, dst); err != nil {
		return fmt.Errorf("linking %s into %s: %w", src, filepath.Dir(dst), err)
	}
	return nil
}

// CRDDirs downloads the Chaos Mesh and prometheus-operator modules and
// returns their CRD folders.
func CRDDirs(ctx context.Context) ([]string, error) {
	var dirs []string
	for _, m := range []struct{ path, version, sub string }{
		{ChaosMeshModule, ChaosMeshVersion, "config/crd/bases"},
		{PrometheusOperatorModule, PrometheusOperatorVersion, "example/prometheus-operator-crd"},
	} {
		mi, err := DownloadModule(ctx, m.path, m.version)
		if err != nil {
			return nil, err
		}
		d := filepath.Join(mi.Dir, m.sub)
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s@%s has no CRD folder %s", m.path, m.version, m.sub)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// BuildStatic builds the Go package pkg of the module in moduleDir into a
// static binary out (CGO off, so it runs in an image with nothing else in
// it). The caller's GOFLAGS are dropped, as for every build here.
func BuildStatic(ctx context.Context, moduleDir, pkg, out string) error {
	cmd := goCommand(ctx, "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = moduleDir
	cmd.Env = goEnv("CGO_ENABLED=0", "GOOS=linux")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s (static) in %s failed: %w\n%s", pkg, moduleDir, err, tail(string(output), 4000))
	}
	return nil
}

// BuildModule builds package pkg ("." for the module's own main) into a
// static binary at out from a throwaway module whose files (go.mod,
// main.go, ...) are given, for programs assembled from other projects' Go
// modules (a CoreDNS with only the plugins a node needs, Chaos Mesh's
// controller-manager). It builds in a temp folder beside out and renames
// the result into place, so a killed build never leaves a half-written
// binary under out's name.
func BuildModule(ctx context.Context, files map[string]string, pkg, out string) error {
	return buildModule(ctx, files, pkg, out, []string{"CGO_ENABLED=0"})
}

// BuildModuleCgo is BuildModule for a program with C code in it (cgo:
// Chaos Mesh's chaos-daemon includes chaos-driver's client.c), still
// linked statically so it runs in an image with nothing else in it: gcc
// links glibc's libc.a (libc6-dev), and the netgo and osusergo tags keep
// name and user lookups in Go, the parts of glibc a static binary cannot
// load.
func BuildModuleCgo(ctx context.Context, files map[string]string, pkg, out string) error {
	if _, err := exec.LookPath("gcc"); err != nil {
		return fmt.Errorf("building %s needs a C compiler (cgo): %w (scripts/install-node-deps.sh installs Debian's gcc and libc6-dev)", pkg, err)
	}
	return buildModule(ctx, files, pkg, out, []string{"CGO_ENABLED=1"},
		"-tags=netgo,osusergo", "-ldflags=-linkmode=external -extldflags=-static")
}

func buildModule(ctx context.Context, files map[string]string, pkg, out string, env []string, flags ...string) error {
	work, err := os.MkdirTemp(filepath.Dir(out), "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	partial := filepath.Join(work, filepath.Base(out))
	cmd := goCommand(ctx, append(append([]string{"build", "-trimpath"}, flags...), "-o", partial, pkg)...)
	cmd.Dir = work
	// -mod=mod lets the go command write go.sum for the throwaway module.
	cmd.Env = goEnv(append([]string{"GOFLAGS=-mod=mod", "GOOS=linux"}, env...)...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s in %s failed: %w\n%s", filepath.Base(out), work, err, tail(string(output), 4000))
	}
	return os.Rename(partial, out)
}
