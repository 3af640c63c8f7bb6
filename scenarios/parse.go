package scenarios

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed *.yaml
var catalogue embed.FS

// Error is a problem with a scenario file, naming file, line and field.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // YAML path, e.g. spec.timeline[1].duration
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += fmt.Sprintf(":%d", e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Errors is every problem found in one file.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Catalogue returns the names of the embedded catalogue scenarios, sorted.
func Catalogue() []string {
	ents, _ := catalogue.ReadDir(".")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// KubernetesCatalogue is the catalogue scenarios that have a Kubernetes
// form (their charts under charts/): those Validate accepts for the
// Kubernetes backend. The others (the failover drill, say) run with kmt
// run only, and the Kubernetes commands refuse them by name.
func KubernetesCatalogue() []string {
	var names []string
	for _, n := range Catalogue() {
		if s, err := Read(n); err == nil && s.Validate(BackendKubernetes) == nil {
			names = append(names, n)
		}
	}
	return names
}

// Read reads a scenario from a path, or by catalogue name ("baseline") when
// no such file exists. It parses and defaults, but does not Validate.
func Read(pathOrName string) (*Scenario, error) {
	data, err := readFile(pathOrName)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read scenario %s: %w", pathOrName, err)
		}
		name := strings.TrimSuffix(filepath.Base(pathOrName), ".yaml")
		data, err = catalogue.ReadFile(name + ".yaml")
		if err != nil || strings.ContainsRune(pathOrName, os.PathSeparator) && !strings.HasPrefix(pathOrName, "scenarios"+string(os.PathSeparator)) {
			return nil, &Error{File: pathOrName, Msg: fmt.Sprintf("no such file, and no catalogue scenario of that name (catalogue: %s)", strings.Join(Catalogue(), ", "))}
		}
	}
	return Parse(pathOrName, data)
}

// MaxFileSize bounds a scenario file: the largest catalogue scenario is a
// few KiB, and a bound keeps a wrong path (a log, an image) from being read
// whole.
const MaxFileSize = 1 << 20

// readFile reads a scenario file that must be a regular file of at most
// MaxFileSize bytes: a device (/dev/zero), a pipe or a folder is refused
// before it is opened, so kmt never reads forever or blocks on a FIFO.
func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &Error{File: path, Msg: fmt.Sprintf("not a regular file (%s); give a scenario YAML file or a catalogue name", describeMode(st.Mode()))}
	}
	if st.Size() > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("%d bytes; a scenario file may have at most %d", st.Size(), MaxFileSize)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("more than %d bytes; a scenario file may have at most that", MaxFileSize)}
	}
	return data, nil
}

func describeMode(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// Parse decodes a scenario strictly (unknown fields and wrong types are
// errors with their line) and applies defaults.
func Parse(file string, data []byte) (*Scenario, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "empty scenario file"}
		}
		return nil, yamlError(file, err)
	}
	s := &Scenario{File: file, lines: map[string]int{}}
	indexLines(&root, "", s.lines)
	// Decode again with KnownFields so unknown fields are errors.
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, nameFields(yamlError(file, err), s.lines)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: file, Msg: "more than one YAML document; put one scenario per file"}
	}
	// Before defaults fill them: an explicit 0 is a mistake, not "default".
	s.explicitZeros = s.checkExplicitZeros()
	s.applyDefaults()
	return s, nil
}

// checkExplicitZeros finds fields written as 0 in the file whose zero value
// would otherwise silently mean "the default".
func (s *Scenario) checkExplicitZeros() Errors {
	var es Errors
	zero := func(path string, isZero bool, what string) {
		if _, written := s.lines[path]; written && isZero {
			es = append(es, s.errAt(path, "is 0; %s (leave the field out for the default)", what))
		}
	}
	sp := &s.Spec
	zero("spec.load.rate", sp.Load.Rate == 0, fmt.Sprintf("give messages/s above 0 (default %d)", DefaultRate))
	zero("spec.load.messageSize", sp.Load.MessageSize == 0, fmt.Sprintf("give a size of at least 80 bytes (default %d)", DefaultMessageSize))
	zero("spec.load.streams", sp.Load.Streams == 0, fmt.Sprintf("give at least 1 stream (default %d)", DefaultStreams))
	zero("spec.validation.stallAfter", sp.Validation.StallAfter == 0,
		fmt.Sprintf("it does not switch the stall watchdog off: write stallWatchdog: off for that (default %s)", DefaultStallAfter))
	for i, t := range sp.Topology.Topics {
		zero(fmt.Sprintf("spec.topology.topics[%d].partitions", i), t.Partitions == 0, fmt.Sprintf("a topic needs at least 1 partition (default %d)", DefaultPartitions))
	}
	return es
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlError turns yaml.v3's errors ("yaml: unmarshal errors:\n  line 5: field
// foo not found in type scenarios.Load") into Errors with their lines.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var es Errors
		for _, m := range te.Errors {
			es = append(es, lineError(file, m))
		}
		return es
	}
	return Errors{lineError(file, strings.TrimPrefix(err.Error(), "yaml: "))}
}

// nameFields gives each line-numbered error without a field the field path
// written on that line, so a type error says which field it is about
// (yaml.v3 reports only the line).
func nameFields(err error, lines map[string]int) error {
	var es Errors
	if !errors.As(err, &es) {
		return err
	}
	for _, e := range es {
		if e.Field == "" && e.Line > 0 {
			e.Field = fieldAt(lines, e.Line)
		}
	}
	return es
}

// fieldAt returns the field path written on line: the deepest one, or,
// when several fields share the line (a flow mapping), their common parent.
func fieldAt(lines map[string]int, line int) string {
	var on []string
	for p, l := range lines {
		if l == line {
			on = append(on, p)
		}
	}
	// Drop paths that are parents of another path on the line.
	var leaves []string
	for _, p := range on {
		parent := false
		for _, q := range on {
			if q != p && (strings.HasPrefix(q, p+".") || strings.HasPrefix(q, p+"[")) {
				parent = true
				break
			}
		}
		if !parent {
			leaves = append(leaves, p)
		}
	}
	if len(leaves) == 0 {
		return ""
	}
	if len(leaves) == 1 {
		return leaves[0]
	}
	prefix := leaves[0]
	for _, p := range leaves[1:] {
		for !strings.HasPrefix(p, prefix+".") && !strings.HasPrefix(p, prefix+"[") {
			i := strings.LastIndexAny(prefix, ".[")
			if i < 0 {
				return ""
			}
			prefix = prefix[:i]
		}
	}
	return prefix
}

func lineError(file, m string) *Error {
	e := &Error{File: file, Msg: m}
	if loc := yamlLine.FindStringSubmatchIndex(m); loc != nil {
		fmt.Sscanf(m[loc[2]:loc[3]], "%d", &e.Line)
		e.Msg = m[:loc[0]] + m[loc[1]:]
	}
	// Make yaml.v3's Go-flavoured messages speak YAML.
	e.Msg = strings.Replace(e.Msg, " in type scenarios.", " in ", 1)
	if strings.HasPrefix(e.Msg, "field ") && strings.Contains(e.Msg, " not found in ") {
		e.Msg = "unknown " + e.Msg + " (check spelling; `kmt lint --help` lists the format)"
	}
	return e
}

// indexLines records the line of every mapping key and sequence item.
func indexLines(n *yaml.Node, path string, out map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexLines(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			out[p] = k.Line
			indexLines(v, p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = c.Line
			indexLines(c, p, out)
		}
	}
}

// Line returns the line of a field path, or of its nearest ancestor.
func (s *Scenario) Line(path string) int {
	for p := path; p != ""; {
		if l, ok := s.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// errAt builds an Error for a field path.
func (s *Scenario) errAt(path, format string, args ...any) *Error {
	return &Error{File: s.File, Line: s.Line(path), Field: path, Msg: fmt.Sprintf(format, args...)}
}
