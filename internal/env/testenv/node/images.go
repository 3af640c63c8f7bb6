package node

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
)

// Image names on the node. Nothing can be pulled on the machines kmt runs
// on, so every image is built here and imported into containerd; pods use
// them with imagePullPolicy: Never.
const (
	// PauseImage is the pod sandbox image (containerd's sandbox_image).
	PauseImage = "kmt.local/pause:1"
	// KmtImage runs the kmt binary, like the Dockerfile's image.
	KmtImage = "kmt.local/kmt:dev"
)

// nonrootUser is distroless's "nonroot" uid:gid, which the Dockerfile's
// image runs as and the charts' securityContext expects.
const nonrootUser = "65532:65532"

// ImageFile is one file placed in an image.
type ImageFile struct {
	// Path inside the image, absolute.
	Path string
	// Source on this machine (read when the layer is written), or Data.
	Source string
	Data   []byte
	Mode   int64
}

// ImageSpec describes an image built without a container engine: one
// layer holding Files (plus the folders they need) and a config.
type ImageSpec struct {
	Ref        string
	Files      []ImageFile
	Dirs       []string          // extra empty folders (mode 1777, like /tmp)
	Links      map[string]string // symlink path -> target
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
}

// BuildImage writes spec as a docker-archive tarball at out (the format
// `ctr images import` reads), using go-containerregistry: an empty image, one
// layer appended, the config set.
func BuildImage(spec ImageSpec, out string) error {
	ref, err := name.NewTag(spec.Ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", spec.Ref, err)
	}
	layerTar, err := layerTarball(spec)
	if err != nil {
		return fmt.Errorf("image %s: %w", spec.Ref, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return fmt.Errorf("image %s: layer: %w", spec.Ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("image %s: appending the layer: %w", spec.Ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Entrypoint = spec.Entrypoint
	cf.Config.Cmd = spec.Cmd
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, spec.Env...)
	cf.Config.User = spec.User
	cf.Config.WorkingDir = spec.WorkingDir
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return fmt.Errorf("image %s: config: %w", spec.Ref, err)
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("writing image %s to %s: %w", spec.Ref, out, err)
	}
	return nil
}

// layerTarball is the layer: every folder on the way to each file (parents
// first, as a tar extractor needs), then the files.
func layerTarball(spec ImageSpec) ([]byte, error) {
	dirs := map[string]int64{}
	paths := make([]string, 0, len(spec.Files)+len(spec.Links))
	for _, f := range spec.Files {
		paths = append(paths, f.Path)
	}
	links := make([]string, 0, len(spec.Links))
	for l := range spec.Links {
		links = append(links, l)
		paths = append(paths, l)
	}
	sort.Strings(links)
	for _, p := range paths {
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	for _, d := range spec.Dirs {
		dirs[filepath.Clean(d)] = 0o1777
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names) // a parent sorts before its children
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: dirs[d]}); err != nil {
			return nil, err
		}
	}
	for _, f := range spec.Files {
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, fmt.Errorf("reading %s for %s: %w", f.Source, f.Path, err)
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path[1:], Mode: mode, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	for _, l := range links {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: l[1:], Linkname: spec.Links[l], Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PauseImageSpec is the sandbox image from the static pause binary.
func PauseImageSpec(pauseBinary string) ImageSpec {
	return ImageSpec{
		Ref:        PauseImage,
		Files:      []ImageFile{{Path: "/pause", Source: pauseBinary, Mode: 0o755}},
		Entrypoint: []string{"/pause"},
		User:       nonrootUser,
	}
}

// KmtImageSpec is the kmt image from the static kmt binary, with the
// Dockerfile's layout and entrypoint (/usr/local/bin/kmt as 65532:65532).
func KmtImageSpec(kmtBinary string) ImageSpec {
	return ImageSpec{
		Ref:        KmtImage,
		Files:      []ImageFile{{Path: "/usr/local/bin/kmt", Source: kmtBinary, Mode: 0o755}},
		Dirs:       []string{"/tmp"},
		Entrypoint: []string{"/usr/local/bin/kmt"},
		User:       nonrootUser,
	}
}

// BuildBaseImages builds the pause and kmt binaries from the module in
// moduleDir (static) and writes both images as tarballs into dir, returning
// their paths.
func BuildBaseImages(ctx context.Context, moduleDir, dir string) ([]string, error) {
	var out []string
	for _, b := range []struct {
		pkg  string
		spec func(string) ImageSpec
	}{
		{"./internal/env/testenv/node/cmd/pause", PauseImageSpec},
		{"./cmd/kmt", KmtImageSpec},
	} {
		bin := filepath.Join(dir, filepath.Base(b.pkg))
		if err := testenv.BuildStatic(ctx, moduleDir, b.pkg, bin); err != nil {
			return nil, err
		}
		spec := b.spec(bin)
		tarPath := filepath.Join(dir, filepath.Base(b.pkg)+"-image.tar")
		if err := BuildImage(spec, tarPath); err != nil {
			return nil, err
		}
		out = append(out, tarPath)
	}
	return out, nil
}
