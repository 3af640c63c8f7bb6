package charts

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// WriteScenario writes the chart of any valid scenario (a game day step's,
// with its own faults, load and short form; not only a catalogue one) into
// dir, vendoring the library chart from root/kmt-lib, so it installs like
// the generated charts under charts/.
func WriteScenario(dir string, s *scenarios.Scenario, root string) error {
	lib, err := readTree(filepath.Join(root, LibraryName))
	if err != nil {
		return fmt.Errorf("reading the library chart %s: %w (give the folder that holds %s, e.g. the repository's charts/)", filepath.Join(root, LibraryName), err, LibraryName)
	}
	if err := s.Validate(scenarios.BackendKubernetes); err != nil {
		return fmt.Errorf("scenario %s on Kubernetes: %w", s.Metadata.Name, err)
	}
	files, err := Files(s)
	if err != nil {
		return err
	}
	for p, b := range lib {
		files[filepath.Join("charts", LibraryName, p)] = b
	}
	return writeTree(dir, files)
}

// writeTree writes files (by path relative to dir) below dir.
func writeTree(dir string, files map[string][]byte) error {
	for p, b := range files {
		f := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
