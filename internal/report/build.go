package report

import "runtime/debug"

// Version is kmt's version; the kmt command sets it from its -ldflags
// version so every report names the binary that wrote it.
var Version = ""

// CurrentBuild returns this binary's version and VCS commit (from the Go
// build information; the commit is empty for builds outside a checkout,
// and ends in "+dirty" for a checkout with uncommitted changes).
func CurrentBuild() Build {
	b := Build{Version: Version}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Commit != "" {
		b.Commit += "+dirty"
	}
	if b.Version == "" {
		b.Version = "unknown"
	}
	return b
}
