{{/* Name of everything a release makes: kmt-<scenario>, at most 52 characters. */}}
{{- define "kmt-lib.fullname" -}}
{{- printf "kmt-%s" .Values.scenario | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The report ConfigMap the validator writes (and only that one). */}}
{{- define "kmt-lib.reportConfigMap" -}}
{{- printf "%s-report-%s" (include "kmt-lib.fullname" .) .Values.run | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Kubernetes recommended labels plus kmt's run labels. */}}
{{- define "kmt-lib.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: kmt
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kmt
app.kubernetes.io/managed-by: {{ .Release.Service }}
kmt.dev/scenario: {{ .Values.scenario | quote }}
kmt.dev/run: {{ .Values.run | quote }}
kmt.dev/cluster: {{ .Values.cluster | default .Values.role | quote }}
kmt.dev/role: {{ .Values.role | quote }}
{{- end -}}

{{/* Selector labels of one component (stable across upgrades). */}}
{{- define "kmt-lib.selectorLabels" -}}
app.kubernetes.io/name: kmt
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kmt-lib.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Pod and container security: non-root, read-only root, no privileges. */}}
{{- define "kmt-lib.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "kmt-lib.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Kafka client settings from existing Secrets (TLS CA/cert, SASL user). */}}
{{- define "kmt-lib.kafkaEnv" -}}
- name: RUN_ID
  value: {{ .Values.run | quote }}
- name: SOURCE_BOOTSTRAP
  value: {{ .Values.kafka.sourceBootstrap | quote }}
- name: TARGET_BOOTSTRAP
  value: {{ .Values.kafka.targetBootstrap | quote }}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if .Values.kafka.tls.secretName }}
- name: KMT_KAFKA_TLS_DIR
  value: /etc/kmt-tls
{{- end }}
{{- if .Values.kafka.sasl.secretName }}
- name: KMT_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: KMT_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.secretName }}
      key: {{ .Values.kafka.sasl.usernameKey }}
- name: KMT_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.secretName }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- end -}}

{{- define "kmt-lib.volumeMounts" -}}
- name: scenario
  mountPath: /etc/kmt
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.secretName }}
- name: kafka-tls
  mountPath: /etc/kmt-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "kmt-lib.volumes" -}}
- name: scenario
  configMap:
    name: {{ include "kmt-lib.fullname" . }}-scenario
- name: tmp
  emptyDir: {}
{{- if .Values.kafka.tls.secretName }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.secretName }}
{{- end }}
{{- end -}}
