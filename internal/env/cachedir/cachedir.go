// Package cachedir is where kmt keeps heavy builds between runs on one
// machine (the Kubernetes binaries, Apache Kafka's libs, golangci-lint, the
// JMX exporter): one folder, one override, so every part agrees.
package cachedir

import (
	"fmt"
	"os"
	"path/filepath"
)

// Env overrides the cache root.
const Env = "KMT_CACHE_DIR"

// Root is $KMT_CACHE_DIR, else <user cache dir>/kmt ($XDG_CACHE_HOME/kmt or
// ~/.cache/kmt on Linux). It is not created here.
func Root() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding kmt's cache folder: %w (set %s to a writable folder)", err, Env)
	}
	return filepath.Join(d, "kmt"), nil
}
