package local

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/apachekafka"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/wan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Every declared fault kind is performed by exactly one family when the
// catalogue says the local backend can do it, and by none otherwise; every
// family kind is declared.
func TestRegistryCoversEveryKind(t *testing.T) {
	owner := map[scenarios.FaultKind]string{}
	for _, fam := range Families() {
		for _, k := range fam.Kinds {
			if prev, ok := owner[k]; ok {
				t.Errorf("kind %s is in families %s and %s", k, prev, fam.Name)
			}
			owner[k] = fam.Name
			if _, ok := scenarios.Kinds[k]; !ok {
				t.Errorf("family %s performs %s, which scenarios/faultkinds.go does not declare", fam.Name, k)
			}
		}
	}
	for k := range scenarios.Kinds {
		_, has := owner[k]
		if want := k.Supports(scenarios.BackendLocal); has != want {
			t.Errorf("kind %s: in a family %v, but the catalogue says the local backend can do it: %v", k, has, want)
		}
	}
}

// paramsFor gives each kind the params validation would require.
func paramsFor(scenarios.FaultKind) scenarios.FaultParams {
	return scenarios.FaultParams{Cluster: "source", Brokers: 1, Partitions: 12, Percent: 10, Config: map[string]string{"retention.ms": "60000"}}
}

// onlyKills is a backend cluster that can kill brokers but offers no other
// capability: broker-pause, cluster-restart and the topic kinds must be
// refused by name, not fail half way.
type onlyKills struct{}

func (onlyKills) Nodes() []int32                  { return []int32{1, 2, 3} }
func (onlyKills) LeaderNodes(string, int) []int32 { return []int32{1} }
func (onlyKills) KillBrokers(nodes []int32) error { return nil }
func (onlyKills) RestoreBrokers(n []int32) error  { return nil }
func (onlyKills) Start(ctx context.Context) error { return nil }

// Every backend either performs each fault kind or refuses it before the
// run with an UnsupportedError naming the fault, the kind and the backend.
// A new backend adds its row here (realkafka: its cluster, WAN and mirror
// types, typed nil is enough: Plan only looks at capabilities).
func TestEveryBackendPerformsOrRefusesEveryKind(t *testing.T) {
	embeddedEnv := Env{
		Source: (*embedded.Cluster)(nil), Target: (*embedded.Cluster)(nil),
		WAN: (*wan.Link)(nil), Mirror: (*mirror.Reference)(nil),
	}
	processEnv := embeddedEnv
	processEnv.Mirror = (*mirror.Process)(nil)
	all := func(k scenarios.FaultKind) bool { return k.Supports(scenarios.BackendLocal) }
	backends := []struct {
		name     string
		env      Env
		performs func(scenarios.FaultKind) bool
		missing  map[scenarios.FaultKind]string // what the refusal must say
	}{
		{"embedded+reference mirror", embeddedEnv, all, nil},
		{"embedded+process mirror", processEnv, all, nil},
		{"Apache Kafka brokers+MirrorMaker 2", Env{Source: (*apachekafka.Cluster)(nil), Target: (*apachekafka.Cluster)(nil),
			WAN: (*wan.Link)(nil), Mirror: (*mirror.MirrorMaker2)(nil)}, all, nil},
		{"external (nothing under kmt's control)", Env{Backend: scenarios.BackendExternal},
			func(scenarios.FaultKind) bool { return false },
			map[scenarios.FaultKind]string{
				scenarios.BrokerKill: "no source cluster under kmt's control", scenarios.MirrorPause: "no mirror under kmt's control",
				scenarios.WANLatency: "no WAN link", scenarios.TopicPurge: "no source cluster under kmt's control",
				scenarios.TopicConfig: "no source cluster under kmt's control", scenarios.TopicCreate: "no source cluster under kmt's control",
			}},
		{"brokers that can only be killed", Env{Backend: "partial", Source: onlyKills{}, Mirror: onlyKills{}},
			func(k scenarios.FaultKind) bool { return k == scenarios.BrokerKill },
			map[scenarios.FaultKind]string{
				scenarios.BrokerPause: "its source cluster cannot pause brokers", scenarios.ClusterRestart: "cannot be stopped and restarted",
				scenarios.TopicAddPartitions: "cannot add partitions", scenarios.TopicPurge: "cannot purge topics",
				scenarios.MirrorKill: "its mirror cannot be killed", scenarios.MirrorPause: "its mirror cannot be paused",
				scenarios.TopicConfig: "its source cluster cannot alter topic configs", scenarios.TopicCreate: "its source cluster cannot create topics",
			}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, name := range scenarios.KindNames() {
				k := scenarios.FaultKind(name)
				f := scenarios.Fault{Name: "f-" + name, Kind: k, Params: paramsFor(k)}
				_, err := Plan(b.env, f)
				if b.performs(k) {
					if err != nil {
						t.Errorf("%s: %v, want it performed", k, err)
					}
					continue
				}
				var ue *scenarios.UnsupportedError
				if !errors.As(err, &ue) || ue.Fault != f.Name || ue.Kind != k || ue.Backend != b.env.backend() {
					t.Errorf("%s: err %v, want an UnsupportedError naming fault %s and backend %s", k, err, f.Name, b.env.backend())
					continue
				}
				if !strings.Contains(err.Error(), string(b.env.backend())) || !strings.Contains(err.Error(), f.Name) {
					t.Errorf("%s: %q does not name the fault and the backend", k, err)
				}
				if want := b.missing[k]; want != "" && !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %q, want it to say %q", k, err, want)
				}
			}
		})
	}
}

// Check reports every fault the backend cannot perform, not just the first.
func TestCheckListsEveryRefusal(t *testing.T) {
	env := Env{Source: onlyKills{}}
	err := Check(env, []scenarios.Fault{
		{Name: "ok", Kind: scenarios.BrokerKill, Params: paramsFor(scenarios.BrokerKill)},
		{Name: "p", Kind: scenarios.BrokerPause, Params: paramsFor(scenarios.BrokerPause)},
		{Name: "k8s", Kind: scenarios.PodFailure},
	})
	if err == nil || !strings.Contains(err.Error(), `"p"`) || !strings.Contains(err.Error(), `"k8s"`) || strings.Contains(err.Error(), `"ok"`) {
		t.Fatalf("Check = %v, want refusals of p and k8s only", err)
	}
}
