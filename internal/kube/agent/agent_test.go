package agent

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

func fault(name string, kind scenarios.FaultKind, at, dur time.Duration, p scenarios.FaultParams) scenarios.Fault {
	return scenarios.Fault{Name: name, Kind: kind, At: scenarios.Duration(at), Duration: scenarios.Duration(dur), Params: p}
}

func scen(fs ...scenarios.Fault) *scenarios.Scenario {
	s := &scenarios.Scenario{Metadata: scenarios.Metadata{Name: "t"}, Spec: scenarios.Spec{Timeline: fs}}
	s.Spec.Topology.Topics = []scenarios.Topic{{Name: "orders"}}
	return s
}

// TestDuties: each cluster's agent answers for what is placed there; the
// target's also for faults with no Kubernetes form.
func TestDuties(t *testing.T) {
	s := scen(
		fault("lat", scenarios.WANLatency, 0, time.Second, scenarios.FaultParams{}),
		fault("bw", scenarios.WANBandwidth, 0, time.Second, scenarios.FaultParams{}),
		fault("pause", scenarios.MirrorPause, 0, time.Second, scenarios.FaultParams{}),
		fault("bpause", scenarios.BrokerPause, 0, time.Second, scenarios.FaultParams{Cluster: "source"}),
		fault("purge", scenarios.TopicPurge, 0, time.Second, scenarios.FaultParams{}),
		fault("grow", scenarios.TopicAddPartitions, 0, time.Second, scenarios.FaultParams{Partitions: 9}),
		fault("reset", scenarios.WANReset, 0, time.Second, scenarios.FaultParams{}),
	)
	want := map[mesh.Cluster]string{
		mesh.Source: "lat/chaos-mesh bw/chaos-mesh bpause/kmt purge/kmt grow/kmt",
		mesh.Target: "lat/chaos-mesh pause/kmt purge/kmt reset/none",
	}
	for c, w := range want {
		ds, err := Duties(s, mesh.DefaultParams(), c)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.f.Name+"/"+d.by)
		}
		if strings.Join(got, " ") != w {
			t.Errorf("%s duties %v, want %s", c, got, w)
		}
	}
}

// TestCollectorFaults: the report's fault entries say exactly which faults
// did not happen, and why; a fault seen in force by every cluster it acts
// in, within the load, has no error and spans the earliest start to the
// latest end.
func TestCollectorFaults(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	s := scen(
		fault("ok-both", scenarios.WANLatency, 10*time.Second, 10*time.Second, scenarios.FaultParams{}),
		fault("half", scenarios.WANLatency, 10*time.Second, 10*time.Second, scenarios.FaultParams{}),
		fault("nothing-selected", scenarios.MirrorKill, 10*time.Second, 10*time.Second, scenarios.FaultParams{}),
		fault("never", scenarios.MirrorKill, 10*time.Second, 10*time.Second, scenarios.FaultParams{}),
		fault("early", scenarios.MirrorKill, 10*time.Second, 10*time.Second, scenarios.FaultParams{}),
		fault("purge", scenarios.TopicPurge, 10*time.Second, 10*time.Second, scenarios.FaultParams{}),
		fault("silent", scenarios.MirrorKill, 10*time.Second, 10*time.Second, scenarios.FaultParams{}),
		fault("stall", scenarios.WANStall, 10*time.Second, 10*time.Second, scenarios.FaultParams{Percent: 5}),
	)
	var purged []string
	c := NewCollector(func(topic string, ls map[int]int64) { purged = append(purged, topic) })
	for _, r := range []Record{
		{Cluster: "source", Fault: "ok-both", Start: at(11)}, // live, then final
		{Cluster: "source", Fault: "ok-both", Start: at(11), End: at(20)},
		{Cluster: "target", Fault: "ok-both", Start: at(10), End: at(21)},
		{Cluster: "target", Fault: "half", Start: at(10), End: at(20)},
		{Cluster: "target", Fault: "nothing-selected", Error: "NetworkChaos/x selected no pod"},
		{Cluster: "target", Fault: "never"},
		{Cluster: "target", Fault: "early", Start: at(-60), End: at(-50)},
		{Cluster: "source", Fault: "purge", Start: at(15), End: at(15), Topic: "orders", LogStart: map[int]int64{0: 7}},
		{Cluster: "target", Fault: "purge", Start: at(10), End: at(20)},
		{Cluster: "target", Fault: "stall", Error: "not performed: wan-stall has no Kubernetes form"},
		{Cluster: "source", Done: true},
	} {
		c.Add(r)
	}
	if m := c.Wait(context.Background(), 10*time.Millisecond); strings.Join(m, ",") != "target" {
		t.Errorf("missing done records %v, want target", m)
	}
	c.Add(Record{Cluster: "target", Done: true})
	if m := c.Wait(context.Background(), time.Second); len(m) != 0 {
		t.Errorf("missing done records %v after both", m)
	}
	if strings.Join(purged, ",") != "orders" {
		t.Errorf("purge callbacks %v, want one for orders", purged)
	}
	got := map[string]string{}
	fs := c.Faults(s, at(0), at(90))
	for _, f := range fs {
		got[f.Name] = f.Error
	}
	if len(fs) != 8 {
		t.Fatalf("%d faults, want one per timeline entry (8)", len(fs))
	}
	for name, want := range map[string]string{
		"ok-both":          "",
		"half":             "[source] no record from the source cluster's fault agent",
		"nothing-selected": "[target] NetworkChaos/x selected no pod",
		"never":            "[target] never in force",
		"early":            "outside the load",
		"purge":            "",
		"silent":           "[target] no record from the target cluster's fault agent",
		"stall":            "has no Kubernetes form",
	} {
		if (want == "") != (got[name] == "") || !strings.Contains(got[name], want) {
			t.Errorf("fault %s: error %q, want %q", name, got[name], want)
		}
	}
	if fs[0].Start != at(10) || fs[0].End != at(21) {
		t.Errorf("ok-both spans %s..%s, want the earliest start and latest end", fs[0].Start, fs[0].End)
	}
	// An agent that never finished leaves its faults unknown.
	c2 := NewCollector(nil)
	c2.Add(Record{Cluster: "target", Fault: "never", Start: at(10)})
	if f := c2.Faults(scen(s.Spec.Timeline[3]), at(0), at(90)); !strings.Contains(f[0].Error, "did not finish") {
		t.Errorf("fault of an agent without a done record: %q", f[0].Error)
	}
}

// TestReadStatus reads a chaos object's status as Chaos Mesh 2.8 writes it.
func TestReadStatus(t *testing.T) {
	obj := func(status string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal([]byte(`{"apiVersion":"chaos-mesh.org/v1alpha1","kind":"NetworkChaos","metadata":{"name":"n1"},"status":`+status+`}`), &u.Object); err != nil {
			t.Fatal(err)
		}
		return u
	}
	ok := readStatus(obj(`{"conditions":[{"type":"Selected","status":"True"}],"experiment":{"desiredPhase":"Stop","containerRecords":[
		{"id":"kafka/mirror-0","phase":"Not Injected","injectedCount":1,"recoveredCount":1,"events":[
			{"type":"Succeeded","operation":"Apply","timestamp":"2026-11-30T01:00:10Z"},
			{"type":"Succeeded","operation":"Recover","timestamp":"2026-11-30T01:00:40Z"}]}]}}`), "fault-x")
	if len(ok.Selected) != 1 || ok.Start.Second() != 10 || ok.End.Second() != 40 || len(ok.Failures) != 0 {
		t.Errorf("injected object read as %+v", ok)
	}
	r := meshRecord(ok, Config{Kube: nilClient{}}, nil)
	if r.Error != "" || !r.Start.Equal(ok.Start) {
		t.Errorf("record of an injected fault: %+v", r)
	}
	none := readStatus(obj(`{"conditions":[{"type":"Selected","status":"False","reason":"no pod is selected"}]}`), "fault-x")
	if r := meshRecord(none, Config{Kube: nilClient{}}, nil); !strings.Contains(r.Error, "selected no pod (Selected=False no pod is selected)") {
		t.Errorf("record of a selector matching nothing: %q", r.Error)
	}
	failed := readStatus(obj(`{"experiment":{"containerRecords":[{"id":"kafka/mirror-0","phase":"Not Injected","events":[
		{"type":"Failed","operation":"Apply","message":"tc: no netem","timestamp":"2026-11-30T01:00:10Z"}]}]}}`), "fault-x")
	if r := meshRecord(failed, Config{Kube: nilClient{}}, nil); !strings.Contains(r.Error, "never injected: Apply kafka/mirror-0: tc: no netem") {
		t.Errorf("record of a failed injection: %q", r.Error)
	}
	if r := meshRecord(nil, Config{Kube: nilClient{}, Workflow: "wf", Namespace: "kmt"}, nil); !strings.Contains(r.Error, "created no chaos object") {
		t.Errorf("record of a step never seen: %q", r.Error)
	}
}

// TestKafkaSideOnEmbedded: the load start from the ledger, a purge, a
// partition increase and the fault topic round trip, against an embedded
// Kafka-protocol cluster over the wire.
func TestKafkaSideOnEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := embedded.Start(ctx, embedded.Options{Name: "source", Brokers: 1, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	boot := cl.Bootstrap()
	for _, tp := range []struct {
		name string
		n    int
	}{{"__kmt_ledger", 1}, {"orders", 3}} {
		if err := cl.CreateTopic(ctx, tp.name, tp.n); err != nil {
			t.Fatal(err)
		}
	}
	kc, err := kafkaClient(srcOf(boot), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	start := time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)
	produce := func(topic, key, value string, part int32) {
		t.Helper()
		if err := kc.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value), Partition: part}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("__kmt_ledger", "other-run", `{"v":1,"run":"other-run","start":"2020-01-01T00:00:00Z"}`, 0)
	// The loadgen's own ledger writer carries the start it marked.
	led := ledger.New()
	led.MarkStart(start)
	led.Ack(ledger.StreamKey{Topic: "orders", Stream: 0}, 0)
	lw, err := ledger.NewTopicWriter(ctx, ledger.TopicWriterConfig{Bootstrap: boot, RunID: "r1", Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := LoadStart(ctx, srcOf(boot), "__kmt_ledger", "r1", 20*time.Second)
	if err != nil || !got.Equal(start) {
		t.Fatalf("LoadStart = %s, %v; want the start r1's first ledger entry carries, %s", got, err, start)
	}
	// Without a start field: the entry's append time less one flush.
	before := time.Now()
	produce("__kmt_ledger", "r2", `{"v":1,"run":"r2","stream":0}`, 0)
	got, err = LoadStart(ctx, srcOf(boot), "__kmt_ledger", "r2", 20*time.Second)
	if err != nil || got.Before(before.Add(-ledgerFlush-time.Second)) || got.After(time.Now()) {
		t.Fatalf("LoadStart without a start field = %s, %v", got, err)
	}
	if _, err := LoadStart(ctx, srcOf(boot), "__kmt_ledger", "never", 2*time.Second); err == nil || !strings.Contains(err.Error(), "did the load start") {
		t.Fatalf("LoadStart of a run with no entry: %v", err)
	}

	for i := 0; i < 10; i++ {
		produce("orders", "k", "v", int32(i%3))
	}
	ls, err := purge(ctx, kc, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if ls[0] != 4 || ls[1] != 3 || ls[2] != 3 || len(ls) != 3 {
		t.Fatalf("purge log starts %v, want 4,3,3 (every record below the high watermark deleted)", ls)
	}
	if err := addPartitions(ctx, kc, "orders", 5); err != nil {
		t.Fatal(err)
	}
	if n := cl.Partitions("orders"); n != 5 {
		t.Fatalf("orders has %d partitions after growing to 5", n)
	}
	if err := addPartitions(ctx, kc, "orders", 2); err == nil {
		t.Fatal("shrinking a topic was accepted")
	}

	w, err := NewWriter(ctx, srcOf(boot), "")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, r := range []Record{
		{Run: "r1", Cluster: "source", Fault: "purge", Start: start, End: start, Topic: "orders", LogStart: ls},
		{Run: "other", Cluster: "source", Fault: "x"},
		{Run: "r1", Cluster: "source", Done: true},
		{Run: "r1", Cluster: "target", Done: true},
	} {
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var purgedAt map[int]int64
	col := NewCollector(func(topic string, l map[int]int64) { purgedAt = l })
	rctx, rcancel := context.WithCancel(ctx)
	go Read(rctx, srcOf(boot), "", "r1", col.Add)
	missing := col.Wait(ctx, 20*time.Second)
	rcancel()
	if len(missing) != 0 || purgedAt[0] != 4 {
		t.Fatalf("read back: missing %v, purge log start %v", missing, purgedAt)
	}
	if n := len(col.recs["x"]); n != 0 {
		t.Errorf("%d records of another run were collected", n)
	}
}

// nilClient stands for "the agent has Kubernetes access" in record tests
// that never call it.
type nilClient struct{ clientIface }

// TestFaultGaugeFollowsBothClusters: kmt_fault_active is 1 while this
// agent holds the fault or the other cluster's agent reports it in force
// (the target's Prometheus must see source-side faults), and a hold's
// beginning is announced once.
func TestFaultGaugeFollowsBothClusters(t *testing.T) {
	g := newGauges(prometheus.NewRegistry())
	var started []string
	g.onStart = func(f scenarios.Fault) { started = append(started, f.Name) }
	f := fault("lat", scenarios.WANLatency, 0, time.Second, scenarios.FaultParams{})
	val := func() float64 { return testutil.ToFloat64(g.fault.WithLabelValues("lat", "wan-latency")) }
	steps := []struct {
		do   func()
		want float64
	}{
		{func() { g.active(f, true) }, 1},
		{func() { g.active(f, true) }, 1},
		{func() { g.remoteActive("lat", "wan-latency", true) }, 1},
		{func() { g.active(f, false) }, 1}, // the other side still holds it
		{func() { g.remoteActive("lat", "wan-latency", false) }, 0},
		{func() { g.remoteActive("lat", "wan-latency", true) }, 1},
		{func() { g.remoteActive("lat", "wan-latency", false) }, 0},
	}
	for i, st := range steps {
		st.do()
		if got := val(); got != st.want {
			t.Errorf("step %d: kmt_fault_active = %v, want %v", i, got, st.want)
		}
	}
	if strings.Join(started, ",") != "lat" {
		t.Errorf("start announced %v, want once", started)
	}
}

// TestRunOnEmbedded runs both clusters' agents against an embedded Kafka
// cluster, on the clock of a ledger entry: the source agent grows a topic
// and purges it on time; the target agent, with no Kubernetes access here,
// cannot pause the mirror, and the collected verdict input says exactly
// that, and nothing else.
func TestRunOnEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := embedded.Start(ctx, embedded.Options{Name: "source", Brokers: 1, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	boot := cl.Bootstrap()
	if err := cl.CreateTopic(ctx, "orders", 2); err != nil {
		t.Fatal(err)
	}
	s := scen(
		fault("grow", scenarios.TopicAddPartitions, time.Second, time.Second, scenarios.FaultParams{Partitions: 4}),
		fault("purge", scenarios.TopicPurge, time.Second, 2*time.Second, scenarios.FaultParams{Topic: "orders"}),
	)
	start := time.Now()
	led := ledger.New()
	led.MarkStart(start)
	led.Ack(ledger.StreamKey{Topic: "orders", Stream: 0}, 0)
	lw, err := ledger.NewTopicWriter(ctx, ledger.TopicWriterConfig{Bootstrap: boot, RunID: "e2e", Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	col := NewCollector(nil)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go Read(rctx, srcOf(boot), "", "e2e", col.Add)
	errs := make(chan error, 2)
	for _, role := range mesh.Clusters {
		go func(role mesh.Cluster) {
			errs <- Run(ctx, Config{Scenario: s, Role: role, RunID: "e2e", Targets: Targets{Mirror: Mirror{Namespace: "kafka", Selector: "app=m", Container: "m"}},
				SourceBootstrap: boot, Inject: true, Linger: time.Millisecond})
		}(role)
	}
	for range mesh.Clusters {
		if err := <-errs; err != nil {
			t.Fatalf("agent: %v", err)
		}
	}
	if m := col.Wait(ctx, 20*time.Second); len(m) != 0 {
		t.Fatalf("no done record from %v", m)
	}
	fs := col.Faults(s, start, time.Now())
	if fs[0].Error != "" || fs[0].Start.Sub(start) < time.Second {
		t.Errorf("grow: %+v; want done at t=1s, no error", fs[0])
	}
	if n := cl.Partitions("orders"); n != 4 {
		t.Errorf("orders has %d partitions, want 4", n)
	}
	if !strings.Contains(fs[1].Error, "[target] no Kubernetes access to pause processes") || strings.Contains(fs[1].Error, "[source]") {
		t.Errorf("purge error %q: want only the target's missing pause", fs[1].Error)
	}
	if d := fs[1].Start.Sub(start); d < time.Second {
		t.Errorf("purge started %s after the load; want mid-window (2s)", d)
	}
}

// srcOf is a plaintext source cluster at bootstrap.
func srcOf(bootstrap string) kafkaclient.Config {
	return kafkaclient.Config{Brokers: strings.Split(bootstrap, ",")}
}

// TestFaultTopicOverSASL: the agent's fault topic works on a cluster that
// requires SASL (the agent's clients come from internal/kafkaclient, which
// carries TLS and SASL; before, the agent could only dial, and a SASL
// cluster was a usage error), and a wrong password is refused.
func TestFaultTopicOverSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(kafkaclient.ScramSHA256, "kmt", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := kafkaclient.Config{Brokers: c.ListenAddrs(), Security: kafkaclient.Security{SASL: &kafkaclient.SASL{Mechanism: kafkaclient.ScramSHA256, Username: "kmt", Password: "s3cret"}}}

	w, err := NewWriter(ctx, src, "")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, r := range []Record{{Run: "r1", Cluster: "source", Fault: "p"}, {Run: "r1", Cluster: "source", Done: true}, {Run: "r1", Cluster: "target", Done: true}} {
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	col := NewCollector(nil)
	rctx, rcancel := context.WithCancel(ctx)
	go Read(rctx, src, "", "r1", col.Add)
	missing := col.Wait(ctx, 20*time.Second)
	rcancel()
	if len(missing) != 0 || len(col.recs["p"]) != 1 {
		t.Fatalf("read back over SASL: missing %v, %d records of fault p, want 1", missing, len(col.recs["p"]))
	}

	bad := src
	bad.Security.SASL = &kafkaclient.SASL{Mechanism: kafkaclient.ScramSHA256, Username: "kmt", Password: "wrong"}
	bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
	defer bcancel()
	if bw, err := NewWriter(bctx, bad, ""); err == nil {
		bw.Close()
		t.Fatal("a wrong SASL password was accepted")
	}
}
