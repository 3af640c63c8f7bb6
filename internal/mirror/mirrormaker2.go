package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MirrorMaker2 runs Apache Kafka's MirrorMaker 2 in dedicated mode
// (org.apache.kafka.connect.mirror.MirrorMaker) as a child process group,
// with properties kmt generates from the scenario. Faults reach it as
// signals through the same Controller as any process mirror: Stop is
// SIGTERM (MirrorMaker 2's shutdown hook stops its herders and commits),
// Kill is SIGKILL of the whole group, Pause/Resume are SIGSTOP/SIGCONT.
type MirrorMaker2 struct {
	*Process
	cfg       MM2Config
	propsPath string
	log       *slog.Logger
	metrics   *mm2Metrics // nil without the exporter agent
}

// MM2MainClass is MirrorMaker 2's dedicated-mode entry point.
const MM2MainClass = "org.apache.kafka.connect.mirror.MirrorMaker"

// MM2Config configures a MirrorMaker 2 process.
type MM2Config struct {
	Settings MM2Settings
	// Java is the command line up to the main class: the java binary, JVM
	// options (heap, logging configuration) and -cp with the
	// distribution's libs. kmt appends its agent, the main class and the
	// properties file.
	Java []string
	// Dir receives mirrormaker2.properties, one mirrormaker2-<n>.log per
	// start and the last metrics scrape; the run's report folder.
	Dir string
	// MetricsAgent is the Prometheus JMX exporter java agent jar; empty: no
	// MirrorMaker 2 metrics (kmt still judges the copy by its own reads).
	MetricsAgent string
	Registerer   prometheus.Registerer // MirrorMaker 2's metrics go here
	Logger       *slog.Logger
	// StartTimeout bounds the wait for the first MirrorSourceConnector task
	// to start; default 5 min (70 s were seen on a 2-core machine at load 35).
	StartTimeout time.Duration
	// StopGrace: SIGTERM to SIGKILL; default 30 s (herders stop tasks and
	// flush offsets on the way out).
	StopGrace time.Duration
	// Env is added to MirrorMaker 2's environment: the secrets its
	// properties refer to with ${env:NAME} (see JavaSecurity.JavaProps).
	Env []string
}

const (
	defaultMM2StartTimeout = 5 * time.Minute
	defaultMM2StopGrace    = 30 * time.Second
	// mm2CopyingLine: Kafka Connect's line when a MirrorSourceConnector task
	// has started. "Kafka MirrorMaker started" comes earlier (tens of
	// seconds on a busy machine) and also when a herder already died.
	mm2CopyingLine = "WorkerSourceTask{id=MirrorSourceConnector-"
	mm2TaskStarted = "Source task finished initialization and start"
	// MM2PropertiesFile is the effective properties file in the report folder.
	MM2PropertiesFile = "mirrormaker2.properties"
)

// NewMirrorMaker2 writes the effective properties to Dir and prepares the
// process; nothing runs until Start. Errors in the settings or the user's
// fragment are reported here.
func NewMirrorMaker2(cfg MM2Config) (*MirrorMaker2, error) {
	if len(cfg.Java) == 0 {
		return nil, errors.New("mirrormaker2: no java command (the Kafka distribution was not found)")
	}
	if cfg.Dir == "" {
		return nil, errors.New("mirrormaker2: no directory for its properties and logs")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirrormaker2: %w", err)
	}
	if cfg.Settings.ExactlyOnce && cfg.Settings.RESTPort == 0 {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("mirrormaker2: a port for the internal REST listener: %w", err)
		}
		cfg.Settings.RESTPort = port
	}
	text, err := MM2Properties(cfg.Settings)
	if err != nil {
		return nil, err
	}
	m := &MirrorMaker2{cfg: cfg, propsPath: filepath.Join(cfg.Dir, MM2PropertiesFile)}
	if err := os.WriteFile(m.propsPath, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("mirrormaker2: writing %s: %w", m.propsPath, err)
	}
	m.log = cfg.Logger
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("component", "mirror", "kind", "mirrormaker2")
	args := append([]string(nil), cfg.Java...)
	if cfg.MetricsAgent != "" {
		m.metrics, err = newMM2Metrics(cfg.Dir, cfg.MetricsAgent, cfg.Registerer, m.log)
		if err != nil {
			return nil, err
		}
		args = append(args, m.metrics.agentArg())
	}
	args = append(args, MM2MainClass, m.propsPath)
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = defaultMM2StopGrace
	}
	if cfg.StartTimeout <= 0 {
		m.cfg.StartTimeout = defaultMM2StartTimeout
	}
	// exec: the JVM replaces the shell, so signals reach it directly (the
	// whole group is signalled anyway).
	p, err := NewProcess(ProcessConfig{
		Command: "exec " + shellJoin(args), LogDir: cfg.Dir, LogName: "mirrormaker2",
		Logger: cfg.Logger, StopGrace: cfg.StopGrace, Env: cfg.Env,
	})
	if err != nil {
		return nil, err
	}
	m.Process = p
	return m, nil
}

// PropertiesPath is the effective properties file MirrorMaker 2 runs with.
func (m *MirrorMaker2) PropertiesPath() string { return m.propsPath }

// Start launches MirrorMaker 2 and waits until its log says a
// MirrorSourceConnector task started (it copies from now on), or it exits,
// or StartTimeout passes (then it is killed), or ctx ends (then it is left
// starting: a restart that outlasts the caller's patience is not a failure
// kmt can judge; the records it brings, or not, are). The error carries the log's tail and,
// for an authentication failure, which cluster and mechanism.
func (m *MirrorMaker2) Start(ctx context.Context) error {
	if err := m.Process.Start(ctx); err != nil {
		return err
	}
	logs := m.Logs()
	if len(logs) == 0 {
		return nil
	}
	logPath := logs[len(logs)-1]
	deadline := time.NewTimer(m.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	begun := time.Now()
	for {
		if taskStarted(logPath) {
			m.log.Info("MirrorMaker 2 started", "after", time.Since(begun).Round(time.Millisecond), "log", logPath)
			if m.metrics != nil {
				m.metrics.start()
			}
			return nil
		}
		if line := authFailure(logPath); line != "" {
			// The herders retry forever; a wrong password never heals.
			_ = m.Kill()
			return m.authError(line, logPath)
		}
		if exited, err := m.exited(); exited {
			return fmt.Errorf("mirrormaker2 exited before it started (%s); last lines of %s:\n%s", errString(err), logPath, tail(logPath))
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			_ = m.Kill()
			return fmt.Errorf("mirrormaker2 started no MirrorSourceConnector task within %s (killed it); last lines of %s:\n%s", m.cfg.StartTimeout, logPath, tail(logPath))
		case <-ctx.Done():
			// The caller stopped waiting (the nemesis bounds a revert to a
			// minute; a JVM on a loaded machine can take longer). The
			// process keeps starting: kmt judges by what arrives, and Close
			// or Kill still end it.
			m.log.Warn("MirrorMaker 2 still starting; not waiting any longer", "waited", time.Since(begun).Round(time.Millisecond), "log", logPath)
			return nil
		}
	}
}

// Close stops MirrorMaker 2 gracefully (SIGKILL after the grace period)
// and keeps its last metrics scrape in the report folder.
func (m *MirrorMaker2) Close() error {
	if m.metrics != nil {
		m.metrics.stop()
	}
	return m.Process.Close()
}

// authFailure returns the first log line reporting a failed SASL login.
func authFailure(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "SaslAuthenticationException") || strings.Contains(line, "Authentication failed") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// authError names the cluster(s) whose SASL mechanism the failed login
// used: the JVM's message names neither the cluster nor kmt's setting.
func (m *MirrorMaker2) authError(line, logPath string) error {
	s := m.cfg.Settings.withDefaults()
	var who []string
	for _, c := range []struct {
		alias, bootstrap string
		client           map[string]string
	}{{s.SourceAlias, s.SourceBootstrap, s.SourceClient}, {s.TargetAlias, s.TargetBootstrap, s.TargetClient}} {
		mech := c.client["sasl.mechanism"]
		if mech != "" && strings.Contains(line, mech) {
			who = append(who, fmt.Sprintf("the %s cluster %s (SASL %s)", c.alias, c.bootstrap, mech))
		}
	}
	if len(who) == 0 {
		who = append(who, "a cluster")
	}
	return fmt.Errorf("mirrormaker2: authentication failed at %s: check the username and password kmt was given for it (killed MirrorMaker 2; see %s): %s", strings.Join(who, " or "), logPath, line)
}

// taskStarted reports whether the log has a line saying a
// MirrorSourceConnector task started.
func taskStarted(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, mm2CopyingLine) && strings.Contains(line, mm2TaskStarted) {
			return true
		}
	}
	return false
}

// shellJoin quotes each argument for sh.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// freePort asks the kernel for a loopback port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var _ Controller = (*MirrorMaker2)(nil)

// MetricsSummary is a few numbers from MirrorMaker 2's last metrics scrape
// (record counts summed, latencies and task counts at their maximum), keyed
// by the exporter's series name; nil without the agent or before a scrape.
func (m *MirrorMaker2) MetricsSummary() map[string]float64 {
	if m.metrics == nil {
		return nil
	}
	return m.metrics.Summary()
}

// MM2Log4j2Console is a log4j2 configuration (properties format: the YAML
// one needs a Jackson module MirrorMaker 2's classpath lacks) that writes
// MirrorMaker 2's log to stdout, which kmt sends to mirrormaker2-<n>.log
// in the report folder. Client and config dumps are kept at WARN.
const MM2Log4j2Console = `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = WARN
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
`
