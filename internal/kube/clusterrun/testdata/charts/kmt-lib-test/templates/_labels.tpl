{{- define "kmt.labels" -}}
app.kubernetes.io/managed-by: kmt
kmt.dev/run: {{ .Values.run | quote }}
kmt.dev/scenario: {{ .Values.scenario | quote }}
kmt.dev/cluster: {{ .Values.cluster | quote }}
{{- end -}}
