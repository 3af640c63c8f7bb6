package cachedir

import (
	"path/filepath"
	"testing"
)

func TestRootHonoursTheOverride(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(Env, dir)
	if got, err := Root(); err != nil || got != dir {
		t.Fatalf("Root() = %q, %v; want %q", got, err, dir)
	}
}

func TestRootDefaultsUnderTheUserCache(t *testing.T) {
	t.Setenv(Env, "")
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg-for-test")
	if got, err := Root(); err != nil || got != filepath.Join("/tmp/xdg-for-test", "kmt") {
		t.Fatalf("Root() = %q, %v; want /tmp/xdg-for-test/kmt", got, err)
	}
}
