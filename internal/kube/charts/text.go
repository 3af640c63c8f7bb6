package charts

import (
	"fmt"
	"strings"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// valuesTemplate: scenario, scenario, Job deadline (s) twice.
const valuesTemplate = `# Values of the kmt scenario chart %s. Install it twice with the same
# run id: into the target cluster, where the mirror runs, with role=target
# (validator, mirror-side faults, assertions as alerts), then into the source
# cluster with role=source (load generator, source-side faults). The
# defaults match kind/ (make kind-up); README.md says what to set for
# Strimzi, Confluent for Kubernetes or plain StatefulSets.

# role: source | target. Selects what this cluster gets.
role: source
# run: the run id, the same on both sides; labels every object (kmt.dev/run)
# and every record. Required and used once: an install with a run id used
# before in this namespace is refused (kmt cluster run and make kind-run
# generate a fresh one).
run: ""
# scenario: fixed by the chart.
scenario: %s
# cluster: the name recorded in the kmt.dev/cluster label (default: role).
cluster: ""

image:
  repository: kmt
  tag: dev
  pullPolicy: IfNotPresent

kafka:
  # Bootstrap addresses as seen from THIS cluster. The validator and the
  # fault agent of the target read the ledger and fault topics from the
  # source cluster, so on the target side sourceBootstrap must be the source
  # cluster's external address.
  sourceBootstrap: source-kafka-bootstrap.kafka.svc:9092
  targetBootstrap: target-kafka-bootstrap.kafka.svc:9092
  tls:
    # An existing Secret with the CA (and client cert/key for mTLS),
    # mounted at /etc/kmt-tls; empty: plaintext.
    secretName: ""
  sasl:
    # An existing Secret with the SASL user; empty: no SASL.
    secretName: ""
    mechanism: SCRAM-SHA-512
    usernameKey: username
    passwordKey: password

# targets: what the faults act on, in each cluster. Defaults: kind/ (Strimzi
# Kafka clusters "source" and "target" with node pool "dual", pods
# <cluster>-dual-<id>, a KafkaMirrorMaker2 "mirror", all in namespace kafka).
targets:
  source:
    namespace: kafka
    # Equality label selector of the broker pods (key=value,...): Chaos
    # Mesh's selectors and kmt's pause. A string, so an override replaces
    # kind's labels instead of merging with them.
    brokerSelector: strimzi.io/cluster=source,strimzi.io/kind=Kafka,strimzi.io/broker-role=true
    # A broker pod's name is brokerPodPrefix + node id (faults with nodes).
    brokerPodPrefix: source-dual-
  target:
    namespace: kafka
    brokerSelector: strimzi.io/cluster=target,strimzi.io/kind=Kafka,strimzi.io/broker-role=true
    brokerPodPrefix: target-dual-
  mirror:
    # Where the mirror's pods run (in the target cluster) and how to find
    # them; container: the mirror's container (mirror-kill and
    # container-kill SIGKILL it through Chaos Mesh's chaos-daemon; pause,
    # stress, clock skew act on it).
    namespace: kafka
    selector: strimzi.io/kind=KafkaMirrorMaker2,strimzi.io/name=mirror-mirrormaker2
    container: mirror-mirrormaker2

# prometheus.url: the Prometheus the validator evaluates the assertions
# against (kind: kube-prometheus-stack release "kps"). For a Prometheus
# behind auth: bearerTokenFile (e.g. the pod's service-account token,
# /var/run/secrets/kubernetes.io/serviceaccount/token), caSecret (a Secret
# with ca.crt to verify its TLS certificate), insecureSkipVerify (test
# clusters only).
prometheus:
  url: http://kps-kube-prometheus-stack-prometheus.monitoring.svc:9090
  bearerTokenFile: ""
  caSecret: ""
  insecureSkipVerify: false

monitoring:
  serviceMonitor: true
  prometheusRule: true
  dashboard: true
  scrapeInterval: 5s
  # labels the Prometheus operator selects ServiceMonitors/PrometheusRules
  # by: kube-prometheus-stack selects release=<its Helm release> (kind's
  # release is kps).
  labels:
    release: kps

loadgen:
  # instances: loadgen pods of the run (an Indexed Job: each pod's index is
  # its identity, with its own streams and epoch; the scenario's rate and
  # count are shared out). They share the run id through the Job's uid;
  # a run id an earlier run used is still refused.
  instances: 1
  resources:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 512Mi}

validator:
  # shards: validator pods reading partitions p %% shards == index each (an
  # Indexed Job "<release>-validator-shards"); the validator Job then merges
  # their states into the one report, equal to one validator's. 1: one
  # validator reads everything.
  shards: 1
  # Above the validator's worst case: it waits up to load duration + 10m for
  # the load, drains, then evaluates the assertions (up to 5m35s); plus 5m
  # to start. A Job past its deadline writes no report.
  activeDeadlineSeconds: %d
  resources:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 1Gi}

agent:
  # kmt's in-cluster fault agent: exports kmt_run_info, kmt_phase and
  # kmt_fault_active, performs the faults Chaos Mesh cannot (broker and
  # mirror pause, topic operations) on the scenario's clock, reads what
  # Chaos Mesh really did, and publishes every fault's record for the
  # validator. Lives as long as the validator.
  activeDeadlineSeconds: %d
  resources:
    requests: {cpu: 50m, memory: 64Mi}
    limits: {memory: 256Mi}

chaos:
  # enabled: inject this side's faults (Chaos Mesh Workflow and kmt's own).
  # false runs load and validation only; the report then says which faults
  # did not happen.
  enabled: true
  # peerAddresses: the far side of the WAN as this cluster's pods see it
  # (NetworkChaos externalTargets). role=target: the source brokers as the
  # mirror reaches them; role=source: where the mirror's connections come
  # from. Never guessed: a scenario with WAN faults refuses to install
  # without it (make kind-run reads the kind nodes' addresses from docker).
  peerAddresses: []

test:
  # helm test: prints the verdict from the report ConfigMap.
  image: busybox:1.36
  reportKey: report.json
`

//nolint:funlen // one JSON Schema literal; splitting it would scatter the schema
func valuesSchema(name string) string {
	return `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "kmt scenario chart ` + name + `",
  "type": "object",
  "additionalProperties": false,
  "required": ["role", "run", "scenario", "image", "kafka", "targets", "prometheus", "monitoring", "loadgen", "validator", "agent", "chaos", "test"],
  "properties": {
    "global": {"type": "object"},
    "kmt-lib": {"type": "object"},
    "role": {"enum": ["source", "target"], "description": "which cluster this install is"},
    "run": {"type": "string", "pattern": "^([a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?)?$", "description": "run id: a label value and part of object names, at most 40 characters"},
    "scenario": {"const": "` + name + `"},
    "cluster": {"type": "string", "pattern": "^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$"},
    "image": {
      "type": "object", "additionalProperties": false, "required": ["repository"],
      "properties": {
        "repository": {"type": "string", "minLength": 1},
        "tag": {"type": "string"},
        "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}
      }
    },
    "kafka": {
      "type": "object", "additionalProperties": false, "required": ["sourceBootstrap", "targetBootstrap", "tls", "sasl"],
      "properties": {
        "sourceBootstrap": {"type": "string", "minLength": 1},
        "targetBootstrap": {"type": "string", "minLength": 1},
        "tls": {"type": "object", "additionalProperties": false, "properties": {"secretName": {"type": "string"}}},
        "sasl": {
          "type": "object", "additionalProperties": false,
          "properties": {
            "secretName": {"type": "string"},
            "mechanism": {"enum": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]},
            "usernameKey": {"type": "string", "minLength": 1},
            "passwordKey": {"type": "string", "minLength": 1}
          }
        }
      }
    },
    "targets": {
      "type": "object", "additionalProperties": false, "required": ["source", "target", "mirror"],
      "properties": {
        "source": {"$ref": "#/definitions/brokers"},
        "target": {"$ref": "#/definitions/brokers"},
        "mirror": {
          "type": "object", "additionalProperties": false, "required": ["namespace", "selector", "container"],
          "properties": {
            "namespace": {"$ref": "#/definitions/namespace"},
            "selector": {"$ref": "#/definitions/selector"},
            "container": {"type": "string", "minLength": 1}
          }
        }
      }
    },
    "prometheus": {
      "type": "object", "additionalProperties": false, "required": ["url"],
      "properties": {
        "url": {"type": "string", "pattern": "^https?://"},
        "bearerTokenFile": {"type": "string"},
        "caSecret": {"type": "string"},
        "insecureSkipVerify": {"type": "boolean"}
      }
    },
    "monitoring": {
      "type": "object", "additionalProperties": false,
      "properties": {
        "serviceMonitor": {"type": "boolean"},
        "prometheusRule": {"type": "boolean"},
        "dashboard": {"type": "boolean"},
        "scrapeInterval": {"type": "string", "pattern": "^[0-9]+(ms|s|m)$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
      }
    },
    "loadgen": {"type": "object", "additionalProperties": false, "properties": {"instances": {"type": "integer", "minimum": 1, "maximum": 1000}, "resources": {"type": "object"}}},
    "validator": {
      "type": "object", "additionalProperties": false,
      "properties": {"shards": {"type": "integer", "minimum": 1, "maximum": 1000}, "activeDeadlineSeconds": {"type": "integer", "minimum": 60}, "resources": {"type": "object"}}
    },
    "agent": {
      "type": "object", "additionalProperties": false,
      "properties": {"activeDeadlineSeconds": {"type": "integer", "minimum": 60}, "resources": {"type": "object"}}
    },
    "chaos": {
      "type": "object", "additionalProperties": false, "required": ["enabled", "peerAddresses"],
      "properties": {
        "enabled": {"type": "boolean"},
        "peerAddresses": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-fA-F:.]+(/[0-9]{1,3})?$|^[A-Za-z0-9.-]+$"}}
      }
    },
    "test": {
      "type": "object", "additionalProperties": false,
      "properties": {"image": {"type": "string", "minLength": 1}, "reportKey": {"type": "string", "minLength": 1}}
    }
  },
  "definitions": {
    "namespace": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"},
    "selector": {"type": "string", "pattern": "^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*(,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*)*$", "description": "equality label selector: key=value[,key=value]"},
    "brokers": {
      "type": "object", "additionalProperties": false, "required": ["namespace", "brokerSelector", "brokerPodPrefix"],
      "properties": {
        "namespace": {"$ref": "#/definitions/namespace"},
        "brokerSelector": {"$ref": "#/definitions/selector"},
        "brokerPodPrefix": {"type": "string", "minLength": 1}
      }
    }
  }
}
`
}

func faultTable(s *scenarios.Scenario, omitted []scenarios.Fault) string {
	if len(s.Spec.Timeline) == 0 {
		return "No faults: this scenario measures a healthy mirror.\n"
	}
	skip := map[string]bool{}
	for _, f := range omitted {
		skip[f.Name] = true
	}
	var b strings.Builder
	b.WriteString("| fault | kind | at | duration | on Kubernetes |\n|---|---|---|---|---|\n")
	for _, f := range s.Spec.Timeline {
		how := "Chaos Mesh Workflow"
		switch {
		case skip[f.Name]:
			how = "**not performed**: no Kubernetes form (the report says so)"
		case mesh.InCluster(f.Kind):
			how = "kmt's fault agent (in-cluster)"
		case f.Kind == scenarios.MirrorKill || f.Kind == scenarios.ContainerKill:
			how = "Chaos Mesh Workflow: PodChaos container-kill of `targets.mirror.container` (SIGKILL through the chaos-daemon, no SIGTERM first)"
		case f.Kind == scenarios.MirrorRestart:
			how = "Chaos Mesh Workflow: PodChaos pod-kill with a grace period (SIGTERM, clean stop)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.Name, f.Kind, f.At, f.Duration, how)
	}
	return b.String()
}

func omittedNote(omitted []scenarios.Fault) string {
	if len(omitted) == 0 {
		return ""
	}
	var n []string
	for _, f := range omitted {
		n = append(n, fmt.Sprintf("%s (%s)", f.Name, f.Kind))
	}
	return fmt.Sprintf("NOTE: %d fault(s) of this scenario have no Kubernetes form and are not performed: %s. The report lists them as not performed, so the verdict cannot pass as if they had happened; run the scenario locally (kmt run) to exercise them.\n", len(omitted), strings.Join(n, ", "))
}

func readme(s *scenarios.Scenario, omitted []scenarios.Fault) string {
	name := s.Metadata.Name
	return fmt.Sprintf(`# kmt scenario chart: %[1]s

Generated from scenarios/%[1]s.yaml by internal/kube/charts; do not edit (run
`+"`make charts`"+`).

%[2]s

## Faults

%[3]s
%[4]s
Chaos Mesh faults are one Workflow per cluster: faults on the source brokers
in the source cluster; mirror faults in the target cluster, where the
mirror runs. Each step has a deadline, so every fault ends by itself. WAN
faults shape each cluster's egress towards `+"`chaos.peerAddresses`"+`, the far side
of the WAN as that cluster sees it: wan-latency in both clusters (each
direction delayed, as the local WAN does), wan-bandwidth on the source
brokers' traffic towards the mirror (the fetch responses that carry the
data), the others on the mirror's traffic to the source. kmt's fault agent
(a Job in each cluster) performs what Chaos Mesh cannot, timed from the
load's real start: broker-pause and mirror-pause by pod exec (SIGSTOP, then
SIGCONT; a liveness probe failing meanwhile turns the pause into a restart,
and the report says so), topic-add-partitions and topic-purge (the mirror is
paused, the source records deleted mid-window) through the Kafka admin API.
Both agents record what really happened; the validator judges by it. Set
`+"`chaos.enabled=false`"+` to run without faults (the report then lists them
as not performed).

## Install

Both sides with the same fresh run id (an id used before is refused):

    RUN=$(date -u +%%Y%%m%%d-%%H%%M%%S)
    helm install kmt-%[1]s charts/%[1]s --kube-context SOURCE -n kmt --set role=source --set run=$RUN \
      --set 'chaos.peerAddresses={MIRROR_ADDRESS_AS_SEEN_BY_THE_SOURCE_BROKERS}'
    helm install kmt-%[1]s charts/%[1]s --kube-context TARGET -n kmt --set role=target --set run=$RUN \
      --set kafka.sourceBootstrap=SOURCE_BROKERS_AS_SEEN_FROM_TARGET \
      --set 'chaos.peerAddresses={SOURCE_BROKER_ADDRESSES_AS_SEEN_FROM_THE_MIRROR}'
    helm test kmt-%[1]s --kube-context TARGET -n kmt   # prints the verdict

role=source gets the load generator Job; role=target the validator Job,
which writes its report into the ConfigMap kmt-%[1]s-report-RUN. Both get
the fault agent, the scenario ConfigMap, ServiceMonitors and the Grafana
dashboard; the target gets the assertions as a PrometheusRule. Kafka
TLS/SASL come from existing Secrets (kafka.tls.secretName,
kafka.sasl.secretName). Label the namespaces faults act in
`+"`kmt.dev/chaos=allowed`"+` (kmt cluster run refuses otherwise).

## What the faults select (targets.*)

The defaults match kind/ (Strimzi clusters `+"`source`"+` and `+"`target`"+`, node pool
`+"`dual`"+`, a KafkaMirrorMaker2 `+"`mirror`"+`, namespace `+"`kafka`"+`). Selectors are
`+"`key=value,...`"+` strings, so an override replaces kind's labels instead of merging:

| your setup | targets.<side>.brokerSelector | brokerPodPrefix | targets.mirror.selector / container |
|---|---|---|---|
| Strimzi (cluster C, node pool P) | strimzi.io/cluster=C,strimzi.io/broker-role=true | C-P- | KafkaMirrorMaker2 M: strimzi.io/kind=KafkaMirrorMaker2,strimzi.io/name=M-mirrormaker2 / M-mirrormaker2 |
| Confluent for Kubernetes (Kafka CR K) | app=K (pods K-0, K-1, ...) | K- | Replicator as a Connect CR R: app=R / R |
| plain StatefulSet S | the StatefulSet's pod labels, e.g. app=S | S- | the mirror Deployment's pod labels / its container name |

Check a selector before a run: `+"`kubectl get pods -n NAMESPACE -l SELECTOR`"+`. A
selector that matches nothing is reported as a fault that did not happen.
`+"`prometheus.url`"+` is the Prometheus the validator queries, and
`+"`monitoring.labels`"+` the labels your Prometheus selects ServiceMonitors and
PrometheusRules by (kube-prometheus-stack: `+"`release=<its release name>`"+`).
`, name, oneLine(s.Metadata.Description), faultTable(s, omitted), omittedNote(omitted))
}

func notes(s *scenarios.Scenario, omitted []scenarios.Fault) string {
	return `kmt scenario {{ .Values.scenario }}, run {{ .Values.run }}, role {{ .Values.role }} in namespace {{ .Release.Namespace }}.
{{- if eq .Values.role "source" }}
The load generator runs: kubectl -n {{ .Release.Namespace }} logs job/{{ include "kmt-lib.fullname" . }}-loadgen -f
{{- else }}
The validator runs: kubectl -n {{ .Release.Namespace }} logs job/{{ include "kmt-lib.fullname" . }}-validator -f
Verdict when it finishes: helm test {{ .Release.Name }} -n {{ .Release.Namespace }}
  (or kubectl -n {{ .Release.Namespace }} get configmap {{ include "kmt-lib.reportConfigMap" . }} -o jsonpath='{.data.report\.json}')
{{- end }}
Fault agent (what really happened to each fault): kubectl -n {{ .Release.Namespace }} logs job/{{ include "kmt-lib.fullname" . }}-agent -f
{{- if .Values.chaos.enabled }}
Chaos Mesh Workflow kmt-{{ .Values.scenario }}-{{ .Values.role }} (if this side has Chaos Mesh faults): kubectl -n {{ .Release.Namespace }} get workflows
{{- else }}
Faults: disabled (chaos.enabled=false); the report lists them as not performed.
{{- end }}
` + strings.ReplaceAll(omittedNote(omitted), "{{", "{{`{{`}}")
}
