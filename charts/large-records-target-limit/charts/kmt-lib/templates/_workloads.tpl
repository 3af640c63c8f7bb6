{{/* Scenario ConfigMap: the scenario YAML both workloads read, from the
scenario chart's files/scenario.yaml. */}}
{{- define "kmt-lib.scenarioConfigMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "kmt-lib.fullname" . }}-scenario
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
data:
  scenario.yaml: |
    {{- .Files.Get "files/scenario.yaml" | nindent 4 }}
  targets.yaml: |
    {{- toYaml .Values.targets | nindent 4 }}
{{- end -}}

{{/* The run id is required and used once per namespace: a ConfigMap
kmt-run-<run> stays after uninstall (resource-policy keep) and a new
install finds it. kmt abort removes it with everything else of the run. */}}
{{- define "kmt-lib.runGuard" -}}
{{- if not .Values.run -}}
{{- fail "run is empty: give both installs of one run the same fresh run id (--set run=$(date -u +%Y%m%d-%H%M%S)); kmt cluster run and make kind-run generate one" -}}
{{- end -}}
{{- if .Release.IsInstall -}}
{{- with (lookup "v1" "ConfigMap" .Release.Namespace (include "kmt-lib.runMarkerName" .)) -}}
{{- fail (printf "run id %q was used before in namespace %s (ConfigMap %s, created %s): every run needs a fresh id, or its records mix with the old run's. Pick a new --set run=..., or remove the old run first: kmt abort --run-id %s" $.Values.run $.Release.Namespace .metadata.name .metadata.creationTimestamp $.Values.run) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kmt-lib.runMarkerName" -}}
{{- printf "kmt-run-%s" .Values.run | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kmt-lib.runMarker" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "kmt-lib.runMarkerName" . }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
  annotations:
    # Kept on uninstall, so the run id cannot be used again by mistake.
    helm.sh/resource-policy: keep
data:
  scenario: {{ .Values.scenario | quote }}
  release: {{ .Release.Name | quote }}
{{- end -}}

{{/* Load generator (role=source): sequenced producer + ledger. */}}
{{- define "kmt-lib.loadgen" -}}
{{- $sel := dict "root" . "component" "loadgen" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "kmt-lib.fullname" . }}-loadgen
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
automountServiceAccountToken: false
---
# A Job that never retries: a restarted producer would send the run again
# from sequence 0. A load that dies shows as a ledger without its done
# entry, which the validator reports as incomplete.
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "kmt-lib.fullname" . }}-loadgen
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: loadgen
# Indexed: pod i is loadgen instance i of loadgen.instances (its own
# streams and epoch, JOB_COMPLETION_INDEX); the instances share the run id
# through the Job's uid (--launch-id), so a reused run id is still refused.
spec:
  backoffLimit: 0
  completionMode: Indexed
  completions: {{ .Values.loadgen.instances | default 1 }}
  parallelism: {{ .Values.loadgen.instances | default 1 }}
  activeDeadlineSeconds: {{ .Values.validator.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "kmt-lib.labels" . | nindent 8 }}
        {{- include "kmt-lib.selectorLabels" $sel | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ include "kmt-lib.fullname" . }}-loadgen
      automountServiceAccountToken: false
      securityContext:
        {{- include "kmt-lib.podSecurityContext" . | nindent 8 }}
      containers:
        - name: loadgen
          image: {{ include "kmt-lib.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - loadgen
            - --scenario
            - /etc/kmt/scenario.yaml
            - --bootstrap
            - $(SOURCE_BOOTSTRAP)
            - --run-id
            - $(RUN_ID)
            - --ledger-topic
            - __kmt_ledger
            - --metrics-addr
            - :9090
            # kmt owns the source topic of a scenario run.
            - --create-topics
            - --instances
            - {{ .Values.loadgen.instances | default 1 | quote }}
            - --launch-id
            - $(KMT_LAUNCH_ID)
          env:
            {{- include "kmt-lib.kafkaEnv" . | nindent 12 }}
            - name: KMT_LAUNCH_ID
              valueFrom:
                fieldRef:
                  fieldPath: metadata.labels['batch.kubernetes.io/controller-uid']
          ports:
            - name: metrics
              containerPort: 9090
          securityContext:
            {{- include "kmt-lib.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml .Values.loadgen.resources | nindent 12 }}
          volumeMounts:
            {{- include "kmt-lib.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "kmt-lib.volumes" . | nindent 8 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "kmt-lib.fullname" . }}-loadgen
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: loadgen
spec:
  selector:
    {{- include "kmt-lib.selectorLabels" $sel | nindent 4 }}
  ports:
    - name: metrics
      port: 9090
      targetPort: metrics
{{- end -}}

{{/* Validator (role=target): reads the mirror's output and the ledger,
evaluates the assertions against Prometheus, writes the verdict: Job
status, logs, and the report ConfigMap. */}}
{{- define "kmt-lib.validator" -}}
{{- $sel := dict "root" . "component" "validator" -}}
{{- $name := printf "%s-validator" (include "kmt-lib.fullname" .) -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
---
# RBAC: create ConfigMaps (RBAC cannot restrict create by name), and
# read/update only the run's report ConfigMap.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["create"]
  - apiGroups: [""]
    resources: ["configmaps"]
    resourceNames: [{{ include "kmt-lib.reportConfigMap" . | quote }}]
    verbs: ["get", "update", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ .Release.Namespace }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: validator
spec:
  backoffLimit: 0
  activeDeadlineSeconds: {{ .Values.validator.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "kmt-lib.labels" . | nindent 8 }}
        {{- include "kmt-lib.selectorLabels" $sel | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      securityContext:
        {{- include "kmt-lib.podSecurityContext" . | nindent 8 }}
      containers:
        - name: validator
          image: {{ include "kmt-lib.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - validate
            - --scenario
            - /etc/kmt/scenario.yaml
            - --source-bootstrap
            - $(SOURCE_BOOTSTRAP)
            - --target-bootstrap
            - $(TARGET_BOOTSTRAP)
            - --run-id
            - $(RUN_ID)
            - --ledger-topic
            - __kmt_ledger
            - --prometheus-url
            - {{ .Values.prometheus.url | quote }}
            {{- with .Values.prometheus.bearerTokenFile }}
            - --prometheus-token-file
            - {{ . | quote }}
            {{- end }}
            {{- if .Values.prometheus.caSecret }}
            - --prometheus-ca-file
            - /etc/kmt-prometheus-ca/ca.crt
            {{- end }}
            {{- if .Values.prometheus.insecureSkipVerify }}
            - --prometheus-insecure
            {{- end }}
            - --report-dir
            - /report
            - --report-configmap
            - {{ include "kmt-lib.reportConfigMap" . | quote }}
            # What the fault agents of both clusters did, before judging.
            - --faults-topic
            - __kmt_faults
            - --metrics-addr
            - :9090
            {{- if gt (int (.Values.validator.shards | default 1)) 1 }}
            # The shards read the records; this Job merges their states.
            - --merge
            - --shards
            - {{ .Values.validator.shards | quote }}
            {{- end }}
          env:
            {{- include "kmt-lib.kafkaEnv" . | nindent 12 }}
          ports:
            - name: metrics
              containerPort: 9090
          securityContext:
            {{- include "kmt-lib.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml .Values.validator.resources | nindent 12 }}
          volumeMounts:
            {{- include "kmt-lib.volumeMounts" . | nindent 12 }}
            - name: report
              mountPath: /report
            {{- if .Values.prometheus.caSecret }}
            - name: prometheus-ca
              mountPath: /etc/kmt-prometheus-ca
              readOnly: true
            {{- end }}
      volumes:
        {{- include "kmt-lib.volumes" . | nindent 8 }}
        - name: report
          emptyDir: {}
        {{- if .Values.prometheus.caSecret }}
        - name: prometheus-ca
          secret:
            secretName: {{ .Values.prometheus.caSecret | quote }}
        {{- end }}
{{- if gt (int (.Values.validator.shards | default 1)) 1 }}
---
# Validator shards: pod i reads partitions p % shards == i of the target and
# source topics and publishes its state to __kmt_validator_shards on the
# target; the validator Job merges them. No report, no ConfigMap: no RBAC.
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}-shards
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: validator
spec:
  backoffLimit: 0
  completionMode: Indexed
  completions: {{ .Values.validator.shards }}
  parallelism: {{ .Values.validator.shards }}
  activeDeadlineSeconds: {{ .Values.validator.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "kmt-lib.labels" . | nindent 8 }}
        {{- include "kmt-lib.selectorLabels" $sel | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      automountServiceAccountToken: false
      securityContext:
        {{- include "kmt-lib.podSecurityContext" . | nindent 8 }}
      containers:
        - name: validator
          image: {{ include "kmt-lib.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - validate
            - --scenario
            - /etc/kmt/scenario.yaml
            - --source-bootstrap
            - $(SOURCE_BOOTSTRAP)
            - --target-bootstrap
            - $(TARGET_BOOTSTRAP)
            - --run-id
            - $(RUN_ID)
            - --ledger-topic
            - __kmt_ledger
            # Purges reach each shard for its own partitions.
            - --faults-topic
            - __kmt_faults
            - --shards
            - {{ .Values.validator.shards | quote }}
            - --metrics-addr
            - :9090
          env:
            {{- include "kmt-lib.kafkaEnv" . | nindent 12 }}
          ports:
            - name: metrics
              containerPort: 9090
          securityContext:
            {{- include "kmt-lib.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml .Values.validator.resources | nindent 12 }}
          volumeMounts:
            {{- include "kmt-lib.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "kmt-lib.volumes" . | nindent 8 }}
{{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: validator
spec:
  selector:
    {{- include "kmt-lib.selectorLabels" $sel | nindent 4 }}
  ports:
    - name: metrics
      port: 9090
      targetPort: metrics
{{- end -}}

{{/* ServiceMonitor of one component (dict root, component). */}}
{{- define "kmt-lib.serviceMonitor" -}}
{{- $root := .root -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "kmt-lib.fullname" $root }}-{{ .component }}
  labels:
    {{- include "kmt-lib.labels" $root | nindent 4 }}
    {{- with $root.Values.monitoring.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "kmt-lib.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      interval: {{ $root.Values.monitoring.scrapeInterval }}
{{- end -}}

{{/* Fault agent (both roles): exports kmt_run_info, kmt_phase and
kmt_fault_active in-cluster, performs the faults Chaos Mesh cannot on the
scenario's clock (from the load's start in the ledger), reads what this
cluster's Chaos Mesh Workflow really injected, and publishes every fault's
record to the fault topic on the source cluster for the validator. RBAC:
read-only on Chaos Mesh objects in the release namespace; pod exec only
where the scenario pauses a process (kmt-lib.agentExecRole). */}}
{{- define "kmt-lib.agent" -}}
{{- $sel := dict "root" . "component" "agent" -}}
{{- $name := printf "%s-agent" (include "kmt-lib.fullname" .) -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
rules:
  - apiGroups: ["chaos-mesh.org"]
    resources: ["workflows", "workflownodes", "podchaos", "networkchaos", "stresschaos", "timechaos"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ .Release.Namespace }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: agent
spec:
  backoffLimit: 0
  activeDeadlineSeconds: {{ .Values.agent.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "kmt-lib.labels" . | nindent 8 }}
        {{- include "kmt-lib.selectorLabels" $sel | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      securityContext:
        {{- include "kmt-lib.podSecurityContext" . | nindent 8 }}
      containers:
        - name: agent
          image: {{ include "kmt-lib.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - agent
            - --scenario
            - /etc/kmt/scenario.yaml
            - --targets
            - /etc/kmt/targets.yaml
            - --role
            - {{ .Values.role | quote }}
            - --run-id
            - $(RUN_ID)
            - --source-bootstrap
            - $(SOURCE_BOOTSTRAP)
            - --target-bootstrap
            - $(TARGET_BOOTSTRAP)
            - --ledger-topic
            - __kmt_ledger
            - --faults-topic
            - __kmt_faults
            - --workflow
            - {{ printf "kmt-%s-%s" .Values.scenario .Values.role | quote }}
            - --inject={{ .Values.chaos.enabled }}
            - --metrics-addr
            - :9090
          env:
            {{- include "kmt-lib.kafkaEnv" . | nindent 12 }}
          ports:
            - name: metrics
              containerPort: 9090
          securityContext:
            {{- include "kmt-lib.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml .Values.agent.resources | nindent 12 }}
          volumeMounts:
            {{- include "kmt-lib.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "kmt-lib.volumes" . | nindent 8 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: agent
spec:
  selector:
    {{- include "kmt-lib.selectorLabels" $sel | nindent 4 }}
  ports:
    - name: metrics
      port: 9090
      targetPort: metrics
{{- end -}}

{{/* Pod exec for the fault agent in one namespace (dict root, namespace):
SIGSTOP/SIGCONT of a broker's or the mirror's process. Labelled so kmt
cluster run counts the namespace as aimed at by chaos (the opt-in). */}}
{{- define "kmt-lib.agentExecRole" -}}
{{- $root := .root -}}
{{- $name := printf "%s-agent-exec-%s" (include "kmt-lib.fullname" $root) $root.Release.Namespace | trunc 63 | trimSuffix "-" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "kmt-lib.labels" $root | nindent 4 }}
    kmt.dev/fault-agent: exec
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list"]
  - apiGroups: [""]
    resources: ["pods/exec"]
    verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ .namespace }}
  labels:
    {{- include "kmt-lib.labels" $root | nindent 4 }}
    kmt.dev/fault-agent: exec
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "kmt-lib.fullname" $root }}-agent
    namespace: {{ $root.Release.Namespace }}
{{- end -}}

{{/* helm test: prints the verdict from the report ConfigMap and fails
unless it is pass. The ConfigMap is mounted (optional, so a missing report
is a clear message rather than a pod stuck on a mount). */}}
{{- define "kmt-lib.test" -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "kmt-lib.fullname" . }}-verdict
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: test
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    {{- include "kmt-lib.podSecurityContext" . | nindent 4 }}
  containers:
    - name: verdict
      image: {{ .Values.test.image }}
      command:
        - sh
        - -c
        - |
          f=/report/{{ .Values.test.reportKey }}
          if [ ! -s "$f" ]; then
            echo "no verdict yet: ConfigMap {{ include "kmt-lib.reportConfigMap" . }} has no {{ .Values.test.reportKey }} (is the validator Job still running? kubectl logs job/{{ include "kmt-lib.fullname" . }}-validator)"
            exit 2
          fi
          cat "$f"; echo
          grep -q '"verdict": *"pass"' "$f"
      securityContext:
        {{- include "kmt-lib.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: report
          mountPath: /report
          readOnly: true
  volumes:
    - name: report
      configMap:
        name: {{ include "kmt-lib.reportConfigMap" . }}
        optional: true
{{- end -}}

{{/* Everything of one side. role=source: loadgen; role=target: validator
and its test. Both: the run marker, the scenario ConfigMap, the fault
agent, ServiceMonitors. */}}
{{- define "kmt-lib.all" -}}
{{- if not (has .Values.role (list "source" "target")) -}}
{{- fail (printf "role must be source or target, got %q" .Values.role) -}}
{{- end -}}
{{- include "kmt-lib.runGuard" . -}}
{{ include "kmt-lib.runMarker" . }}
---
{{ include "kmt-lib.scenarioConfigMap" . }}
---
{{ include "kmt-lib.agent" . }}
---
{{- if eq .Values.role "source" }}
{{ include "kmt-lib.loadgen" . }}
{{- else }}
{{ include "kmt-lib.validator" . }}
---
{{ include "kmt-lib.test" . }}
{{- end }}
{{- if .Values.monitoring.serviceMonitor }}
{{- range (list (ternary "loadgen" "validator" (eq .Values.role "source")) "agent") }}
---
{{ include "kmt-lib.serviceMonitor" (dict "root" $ "component" .) }}
{{- end }}
{{- end }}
{{- end -}}
