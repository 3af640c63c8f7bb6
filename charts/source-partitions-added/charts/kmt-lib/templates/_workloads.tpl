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
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "kmt-lib.fullname" . }}-loadgen
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    app.kubernetes.io/component: loadgen
spec:
  replicas: 1
  strategy:
    type: Recreate
  selector:
    matchLabels:
      {{- include "kmt-lib.selectorLabels" $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "kmt-lib.labels" . | nindent 8 }}
        app.kubernetes.io/component: loadgen
    spec:
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
            # A Deployment restarts a container that exits: keep serving
            # /metrics after the load instead of producing the run again.
            - --linger
            # kmt owns the source topic of a scenario run.
            - --create-topics
          env:
            {{- include "kmt-lib.kafkaEnv" . | nindent 12 }}
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

{{/* ServiceMonitor of this side's workload. */}}
{{- define "kmt-lib.serviceMonitor" -}}
{{- $component := ternary "loadgen" "validator" (eq .Values.role "source") -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "kmt-lib.fullname" . }}-{{ $component }}
  labels:
    {{- include "kmt-lib.labels" . | nindent 4 }}
    {{- with .Values.monitoring.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "kmt-lib.selectorLabels" (dict "root" . "component" $component) | nindent 6 }}
  endpoints:
    - port: metrics
      interval: {{ .Values.monitoring.scrapeInterval }}
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
and its test. Both: scenario ConfigMap, ServiceMonitor. */}}
{{- define "kmt-lib.all" -}}
{{- if not (has .Values.role (list "source" "target")) -}}
{{- fail (printf "role must be source or target, got %q" .Values.role) -}}
{{- end -}}
{{ include "kmt-lib.scenarioConfigMap" . }}
---
{{- if eq .Values.role "source" }}
{{ include "kmt-lib.loadgen" . }}
{{- else }}
{{ include "kmt-lib.validator" . }}
---
{{ include "kmt-lib.test" . }}
{{- end }}
{{- if .Values.monitoring.serviceMonitor }}
---
{{ include "kmt-lib.serviceMonitor" . }}
{{- end }}
{{- end -}}
