package node

import (
	"archive/tar"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestBuildImageReadsBack builds an image the way the node does and reads
// it back as a registry client would: config (entrypoint, user, platform)
// and one layer whose folders come before their files.
func TestBuildImageReadsBack(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kmt")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.tar")
	if err := BuildImage(KmtImageSpec(bin), out); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(KmtImage)
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("reading the image back: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/usr/local/bin/kmt" {
		t.Errorf("entrypoint = %q, want the Dockerfile's /usr/local/bin/kmt", got)
	}
	if cf.Config.User != "65532:65532" || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("user/os/arch = %s/%s/%s, want 65532:65532/linux/%s", cf.Config.User, cf.OS, cf.Architecture, runtime.GOARCH)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		modes[h.Name] = h.Mode
		if h.Name == "usr/local/bin/kmt" {
			data, _ := io.ReadAll(tr)
			if string(data) != "#!binary" {
				t.Errorf("kmt in the layer = %q, want the binary's bytes", data)
			}
		}
	}
	want := []string{"tmp/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/kmt"}
	if !slices.Equal(names, want) {
		t.Errorf("layer entries = %v, want %v", names, want)
	}
	if modes["tmp/"] != 0o1777 || modes["usr/local/bin/kmt"] != 0o755 {
		t.Errorf("modes: tmp %o kmt %o, want 1777 and 755", modes["tmp/"], modes["usr/local/bin/kmt"])
	}
}

// TestCNIConfigKeepsPodsOnTheSubnet: the pod network must not route
// anywhere but its own /24 and the Service range through the bridge (no
// default route, no masquerade).
func TestCNIConfigKeepsPodsOnTheSubnet(t *testing.T) {
	var conf struct {
		Plugins []struct {
			Type             string `json:"type"`
			IsDefaultGateway bool   `json:"isDefaultGateway"`
			IPMasq           bool   `json:"ipMasq"`
			IPAM             struct {
				Routes  []map[string]string `json:"routes"`
				DataDir string
			} `json:"ipam"`
		} `json:"plugins"`
	}
	l := layout{root: "/x"}
	if err := json.Unmarshal([]byte(cniConflist(l)), &conf); err != nil {
		t.Fatalf("conflist is not JSON: %v", err)
	}
	br := conf.Plugins[0]
	if br.Type != "bridge" || br.IsDefaultGateway || br.IPMasq {
		t.Errorf("bridge plugin = %+v, want no default gateway, no masquerade", br)
	}
	if len(br.IPAM.Routes) != 1 || len(br.IPAM.Routes[0]) != 1 || br.IPAM.Routes[0]["dst"] != ServiceCIDR {
		t.Errorf("pod routes = %v, want only [{dst: %s}] (the Services, through the bridge)", br.IPAM.Routes, ServiceCIDR)
	}
	if !strings.HasPrefix(br.IPAM.DataDir, "/x/") {
		t.Errorf("IPAM data dir %q is outside the node folder", br.IPAM.DataDir)
	}
}

// TestSweepRemovesProcessesMountsAndFolder: what a dead harness leaves (a
// process working in the node folder, a mount under it) is gone after
// sweep, and Leftovers saw it before.
func TestSweepRemovesProcessesMountsAndFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir, err := os.MkdirTemp("", "kmt-sweeptest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sweep(dir, "") })
	mnt := filepath.Join(dir, "kubelet", "pods", "x")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	sleeper := exec.Command("sleep", "600")
	sleeper.Dir = dir
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	// sweep is what is tested; should it regress, the sleeper still dies.
	t.Cleanup(func() { _ = sleeper.Process.Kill() })
	go func() { _ = sleeper.Wait() }()
	if got := leftovers(dir, ""); len(got) != 3 {
		t.Fatalf("Leftovers before sweep = %v, want the process, the mount and the folder", got)
	}
	if err := sweep(dir, ""); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if got := leftovers(dir, ""); len(got) != 0 {
		t.Errorf("Leftovers after sweep = %v, want none", got)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/a\040b/c`); got != "/a b/c" {
		t.Errorf("unescape = %q", got)
	}
}

func TestMentionsNeedsAPathBoundary(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"containerd", "--config", "/tmp/kmt-node/containerd/config.toml"}, true},
		{[]string{"etcd", "--data-dir=/tmp/kmt-node"}, true},
		{[]string{"sleep", "/tmp/kmt-node"}, true},
		{[]string{"containerd", "--config", "/tmp/kmt-node-123/containerd/config.toml"}, false},
		{[]string{"etcd", "--data-dir=/tmp/kmt-node-123"}, false},
	} {
		if got := mentions(tc.args, "/tmp/kmt-node"); got != tc.want {
			t.Errorf("mentions(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// TestSweepStaleFindsDeadNodes: a node folder left in the temp folder by a
// dead harness (with a process still working in it) is swept by the next
// node's start; other folders are not touched.
func TestSweepStaleFindsDeadNodes(t *testing.T) {
	tmp := t.TempDir()
	stale := filepath.Join(tmp, tempPrefix+"123")
	other := filepath.Join(tmp, "kmt-nodeish")
	for _, d := range []string{stale, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sleeper := exec.Command("sleep", "600")
	sleeper.Dir = stale
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = sleeper.Wait() }()
	t.Cleanup(func() { _ = sleeper.Process.Kill() })
	sweepStale(slog.Default(), tmp, "")
	if got := leftovers(stale, ""); len(got) != 0 {
		t.Errorf("stale node not swept: %v", got)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("sweepStale removed %s, which is not a node folder: %v", other, err)
	}
}
