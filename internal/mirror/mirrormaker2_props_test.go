package mirror

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// effective reads a properties text the way Java does (last key wins).
func effective(t *testing.T, text string) map[string]string {
	t.Helper()
	ps, err := parseProperties(text)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	m := map[string]string{}
	for _, p := range ps {
		m[p.key] = p.value
	}
	return m
}

func baseSettings() MM2Settings {
	return MM2Settings{SourceBootstrap: "127.0.0.1:9001,127.0.0.1:9002", TargetBootstrap: "127.0.0.1:9101", Topics: []string{"orders", "a.b"}}
}

func wantProps(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v == "<absent>" && ok:
			t.Errorf("%s = %q, want it unset", k, g)
		case v != "<absent>" && g != v:
			t.Errorf("%s = %q (set: %v), want %q", k, g, ok, v)
		}
	}
}

func TestMM2PropertiesDefaults(t *testing.T) {
	text, err := MM2Properties(baseSettings())
	if err != nil {
		t.Fatal(err)
	}
	wantProps(t, effective(t, text), map[string]string{
		"clusters":                               "source, target",
		"source.bootstrap.servers":               "127.0.0.1:9001,127.0.0.1:9002",
		"target.bootstrap.servers":               "127.0.0.1:9101",
		"source->target.enabled":                 "true",
		"source->target.topics":                  `orders,a\.b`,
		"target->source.enabled":                 "false",
		"target->source.emit.heartbeats.enabled": "false",
		"tasks.max":                              "1",
		"refresh.topics.interval.seconds":        "5",
		"emit.checkpoints.interval.seconds":      "5",
		"replication.policy.class":               "<absent>",
		"offset.lag.max":                         "<absent>",
		"target.offset.flush.interval.ms":        "<absent>",
		"replication.factor":                     "<absent>",
		"target.exactly.once.source.support":     "<absent>",
		"listeners":                              "<absent>",
	})
	if got := MM2TargetTopic("", "", "orders"); got != "source.orders" {
		t.Errorf("default policy target topic %q, want source.orders", got)
	}
}

func TestMM2PropertiesFromScenarioSettings(t *testing.T) {
	s := baseSettings()
	lag := int64(0)
	s.Policy, s.Tasks, s.OffsetLagMax = PolicyIdentity, 4, &lag
	s.SourceAlias, s.TargetAlias = "east", "west"
	s.CheckpointInterval, s.RefreshInterval, s.OffsetFlushInterval = 30*time.Second, 2*time.Second, 1500*time.Millisecond
	s.SourceBrokers, s.TargetBrokers = 1, 5
	s.ExactlyOnce, s.RESTPort = true, 18083
	s.SourceClient = map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}
	text, err := MM2Properties(s)
	if err != nil {
		t.Fatal(err)
	}
	wantProps(t, effective(t, text), map[string]string{
		"clusters":                              "east, west",
		"east->west.enabled":                    "true",
		"west->east.emit.heartbeats.enabled":    "false",
		"replication.policy.class":              identityPolicyClass,
		"tasks.max":                             "4",
		"offset.lag.max":                        "0",
		"emit.checkpoints.interval.seconds":     "30",
		"sync.group.offsets.interval.seconds":   "30",
		"refresh.topics.interval.seconds":       "2",
		"west.offset.flush.interval.ms":         "1500",
		"replication.factor":                    "3",
		"offset.storage.replication.factor":     "3",
		"offset-syncs.topic.replication.factor": "1",
		"west.exactly.once.source.support":      "enabled",
		"east.consumer.isolation.level":         "read_committed",
		"dedicated.mode.enable.internal.rest":   "true",
		"listeners":                             "http://127.0.0.1:18083",
		"east.security.protocol":                "SASL_SSL",
		"east.sasl.mechanism":                   "SCRAM-SHA-512",
		"west.security.protocol":                "<absent>",
	})
	if got := MM2TargetTopic(PolicyIdentity, "east", "orders"); got != "orders" {
		t.Errorf("identity target topic %q", got)
	}
}

func TestMM2FragmentOverridesAndIsShown(t *testing.T) {
	s := baseSettings()
	s.Fragment = "# production\ntasks.max = 8\noffset.lag.max: 500\nsource.consumer.max.poll.records 2000\n"
	text, err := MM2Properties(s)
	if err != nil {
		t.Fatal(err)
	}
	got := effective(t, text)
	wantProps(t, got, map[string]string{"tasks.max": "8", "offset.lag.max": "500", "source.consumer.max.poll.records": "2000"})
	if !strings.Contains(text, "# overridden: tasks.max=1\n") {
		t.Errorf("kmt's tasks.max is not marked as overridden:\n%s", text)
	}
	if !strings.Contains(text, s.Fragment) {
		t.Errorf("the fragment is not shown as given:\n%s", text)
	}
}

func TestMM2FragmentReservedKeysAreRefused(t *testing.T) {
	for key, field := range map[string]string{
		"clusters":                     "sourceAlias",
		"replication.policy.class":     "replicationPolicy",
		"source->target.topics":        "spec.topology.topics",
		"source.bootstrap.servers":     "--source-bootstrap",
		"replication.policy.separator": "separator",
	} {
		s := baseSettings()
		s.Fragment = key + "=x\n"
		_, err := MM2Properties(s)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), field) {
			t.Errorf("fragment setting %s: err %v, want one naming the key and %s", key, err, field)
		}
	}
	s := baseSettings()
	s.Fragment = "=novalue\n"
	if _, err := MM2Properties(s); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a key-less line: err %v, want one naming line 1", err)
	}
}

func TestMM2SettingsErrors(t *testing.T) {
	for name, mod := range map[string]func(*MM2Settings){
		"same alias":   func(s *MM2Settings) { s.SourceAlias, s.TargetAlias = "a", "a" },
		"bad alias":    func(s *MM2Settings) { s.SourceAlias = "a.b" },
		"bad policy":   func(s *MM2Settings) { s.Policy = "rename" },
		"eos no port":  func(s *MM2Settings) { s.ExactlyOnce = true },
		"no topics":    func(s *MM2Settings) { s.Topics = nil },
		"no bootstrap": func(s *MM2Settings) { s.TargetBootstrap = "" },
	} {
		s := baseSettings()
		mod(&s)
		if _, err := MM2Properties(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMM2InternalTopicsFollowAliases(t *testing.T) {
	src, dst := MM2InternalTopics(MM2Settings{SourceAlias: "east", TargetAlias: "west"})
	var names []string
	for _, x := range append(src, dst...) {
		names = append(names, x.Name)
	}
	sort.Strings(names)
	want := "east.checkpoints.internal heartbeats mm2-configs.east.internal mm2-offset-syncs.west.internal mm2-offsets.east.internal mm2-status.east.internal"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("internal topics %q, want %q", got, want)
	}
}

// TestPropertiesReadLikeJava writes tricky keys and values with kmt's
// escaping, adds a hand-written fragment with every syntax Java accepts,
// and compares kmt's reading of the file with java.util.Properties'.
func TestPropertiesReadLikeJava(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java on PATH")
	}
	s := baseSettings()
	s.Topics = []string{"a.b.c"}
	s.SourceClient = map[string]string{
		"sasl.jaas.config":        `org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p\"w d#!";`,
		"ssl.truststore.location": `/tmp/dir with space/c:a=b.pem`,
	}
	s.Fragment = strings.Join([]string{
		"! bang comment",
		"  indented.key = spaced value  ",
		"colon.key:colon value",
		"space.key space value",
		`continued = first \`,
		`    second`,
		`escaped\ key\=x = v\tw\u0041`,
		`target.producer.linger.ms=5`,
		"tasks.max=3",
		"trailing.bs = x\\\\",
		"",
	}, "\n")
	text, err := MM2Properties(s)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mm2.properties")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(java, "-XX:-UsePerfData", filepath.Join("testdata", "PropsDump.java"), path).CombinedOutput()
	if err != nil {
		t.Fatalf("java: %v\n%s", err, out)
	}
	var goLines []string
	for k, v := range effective(t, text) {
		goLines = append(goLines, jesc(k)+"\t"+jesc(v))
	}
	sort.Strings(goLines)
	javaLines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	sort.Strings(javaLines)
	// What kmt wrote is what Java reads.
	for k, v := range map[string]string{
		"source.sasl.jaas.config":        s.SourceClient["sasl.jaas.config"],
		"source.ssl.truststore.location": s.SourceClient["ssl.truststore.location"],
		"source->target.topics":          `a\.b\.c`,
	} {
		if !slices.Contains(javaLines, jesc(k)+"\t"+jesc(v)) {
			t.Errorf("Java does not read %s as %q", k, v)
		}
	}
	if g, j := strings.Join(goLines, "\n"), strings.Join(javaLines, "\n"); g != j {
		t.Errorf("kmt and Java read the file differently\nkmt:\n%s\njava:\n%s\nfile:\n%s", g, j, text)
	}
}

func jesc(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\t", `\t`).Replace(s)
}
