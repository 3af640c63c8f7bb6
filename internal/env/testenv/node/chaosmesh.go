package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
)

// Chaos Mesh's controller-manager, built from its Go module at the version
// whose CRDs testenv installs (testenv.ChaosMeshVersion), runs on this
// machine beside the kubelet and executes the scenario charts' Workflows
// (PodChaos pod-kill deletes pods through the API server; container-kill
// asks the chaos-daemon on the node, chaosdaemon.go, to SIGKILL the
// container's task). kind/ pins Chaos Mesh 2.8.3, but the Go module proxy
// refuses that tag's commit (60ec97f1fd5d, pseudo-version
// v0.0.0-20260610033653-60ec97f1fd5d: 403 "This module version is not
// available") and serves only a later master commit, the one testenv's CRDs
// come from.
//
// What cannot run here: NetworkChaos latency and loss are tc netem inside
// the pods' network namespaces, and this kernel has no sch_netem (only
// tbf), so they cannot be injected for real on this machine (faults.go).

// chaosMeshReplaceRE matches a module replacement line of a go.mod (inside
// or outside a replace block).
var chaosMeshReplaceRE = regexp.MustCompile(`^\s*(?:replace\s+)?(\S+)(?:\s+\S+)?\s+=>\s+(\S+)(?:\s+(\S+))?\s*$`)

// pseudoVersionRE finds a pseudo-version's commit time and hash.
var pseudoVersionRE = regexp.MustCompile(`[-.](\d{14})-([0-9a-f]{12})$`)

// chaosMeshGoMod is the throwaway module's go.mod: Chaos Mesh at version
// with its own replacements (a dependency's replacements are ignored, so
// they are copied), its ./api folder replaced by the api module at the
// same commit.
func chaosMeshGoMod(upstream []byte, version string) (string, error) {
	m := pseudoVersionRE.FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("chaos mesh version %q is not a pseudo-version (vX.Y.Z-0.<time>-<commit>)", version)
	}
	apiVersion := "v0.0.0-" + m[1] + "-" + m[2]
	var b strings.Builder
	fmt.Fprintf(&b, "module kmt.local/chaos-mesh\n\ngo 1.26.0\n\nrequire %s %s\n\nreplace (\n", testenv.ChaosMeshModule, version)
	sc := bufio.NewScanner(bytes.NewReader(upstream))
	for sc.Scan() {
		m := chaosMeshReplaceRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if strings.HasPrefix(m[2], "./") || strings.HasPrefix(m[2], "../") {
			if m[1] != testenv.ChaosMeshModule+"/api" {
				return "", fmt.Errorf("chaos mesh go.mod replaces %s with the local folder %s: the build recipe knows only ./api", m[1], m[2])
			}
			fmt.Fprintf(&b, "\t%s => %s %s\n", m[1], m[1], apiVersion)
			continue
		}
		fmt.Fprintf(&b, "\t%s => %s %s\n", m[1], m[2], m[3])
	}
	b.WriteString(")\n")
	return b.String(), nil
}

// EnsureChaosMesh returns the cached chaos-controller-manager, building it
// when missing (many minutes when cold: it pulls most of Chaos Mesh).
func EnsureChaosMesh(ctx context.Context, logger *slog.Logger) (string, error) {
	return ensureChaosMeshProgram(ctx, logger, "chaos-controller-manager", testenv.BuildModule)
}

// ensureChaosMeshProgram returns the cached program cmd/<name> of Chaos
// Mesh at testenv.ChaosMeshVersion, building it with build (a static
// binary, testenv.BuildModule or BuildModuleCgo) from the throwaway module
// chaosMeshGoMod writes when it is missing.
func ensureChaosMeshProgram(ctx context.Context, logger *slog.Logger, name string, build func(ctx context.Context, files map[string]string, pkg, out string) error) (string, error) {
	return ensureCached(ctx, logger, name, testenv.ChaosMeshVersion, func(out string) error {
		mi, err := testenv.DownloadModule(ctx, testenv.ChaosMeshModule, testenv.ChaosMeshVersion)
		if err != nil {
			return err
		}
		upstream, err := os.ReadFile(mi.GoMod)
		if err != nil {
			return err
		}
		goMod, err := chaosMeshGoMod(upstream, testenv.ChaosMeshVersion)
		if err != nil {
			return err
		}
		return build(ctx, map[string]string{"go.mod": goMod}, testenv.ChaosMeshModule+"/cmd/"+name, out)
	})
}

// StartChaosMesh installs the Chaos Mesh and prometheus-operator CRDs
// (testenv.CRDDirs: the versions testenv's schema tests use), runs Chaos
// Mesh's chaos-daemon on the node (chaosdaemon.go) and starts its
// controller-manager, building both first when they are not cached (many
// minutes when cold), so charts with Workflows perform their faults:
// pod-kill through the API server, container-kill through the daemon.
// Stop stops them.
func (n *Node) StartChaosMesh(ctx context.Context) error {
	bin, err := EnsureChaosMesh(ctx, n.logger)
	if err != nil {
		return err
	}
	daemonBin, err := EnsureChaosDaemon(ctx, n.logger)
	if err != nil {
		return err
	}
	dirs, err := testenv.CRDDirs(ctx)
	if err != nil {
		return err
	}
	if _, err := envtest.InstallCRDs(n.Env.Config, envtest.CRDInstallOptions{Paths: dirs, ErrorIfPathMissing: true, MaxTime: 3 * time.Minute}); err != nil {
		return fmt.Errorf("installing the Chaos Mesh and prometheus-operator CRDs from %v: %w", dirs, err)
	}
	daemonEnv, err := n.startChaosDaemon(ctx, daemonBin)
	if err != nil {
		return err
	}
	return n.startChaosMesh(bin, daemonEnv)
}

// startChaosMesh starts the controller-manager against the node's API
// server: cluster-scoped, no leader election, no webhooks (its defaulting
// and validating webhooks would need the API server to call back into this
// machine; the charts' objects are complete without them), security mode
// off (it would ask the API server whether the requesting user may chaos
// each namespace through a webhook too), metrics and the unused webhook
// listener on loopback, and daemonEnv: where the chaos-daemon is and the
// client certificate it accepts.
func (n *Node) startChaosMesh(bin string, daemonEnv []string) error {
	certs := n.l.path("chaos-mesh", "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return err
	}
	crt, key, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		return err
	}
	if err := writeFiles(map[string]string{filepath.Join(certs, "tls.crt"): string(crt), filepath.Join(certs, "tls.key"): string(key)}); err != nil {
		return err
	}
	webhook, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	metrics, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	d, err := startDaemonIn("chaos-controller-manager", n.l.logs(), n.l.path("chaos-mesh"), append([]string{
		"KUBECONFIG=" + n.KubeconfigPath,
		"CLUSTER_SCOPED=true",
		"ENABLE_LEADER_ELECTION=false",
		"ENABLED_WEBHOOKS=none",
		"SECURITY_MODE=false",
		"CHAOSD_SECURITY_MODE=false",
		"CERTS_DIR=" + certs,
		"WEBHOOK_HOST=127.0.0.1",
		fmt.Sprintf("WEBHOOK_PORT=%d", webhook),
		"METRICS_HOST=127.0.0.1",
		fmt.Sprintf("METRICS_PORT=%d", metrics),
		"PPROF_ADDR=0",
	}, daemonEnv...), bin)
	if err != nil {
		return err
	}
	n.daemons = append(n.daemons, d)
	return nil
}
