{{/*
Names, labels and the values derived from the worker's configuration. The worker reads its
settings from environment variables (the README's configuration table); the chart renders
them into a ConfigMap and a Secret, and derives from the same values what Kubernetes and KEDA
must agree with: the metrics port, the consumer group, the topics, the shutdown bound.
*/}}

{{- define "credentials-consumer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "credentials-consumer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "credentials-consumer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credentials-consumer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The worker pods only: the Service, the PDB and the ServiceMonitor select these. */}}
{{- define "credentials-consumer.workerSelectorLabels" -}}
{{ include "credentials-consumer.selectorLabels" . }}
app.kubernetes.io/component: worker
{{- end -}}

{{- define "credentials-consumer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "credentials-consumer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openedx
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "credentials-consumer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "credentials-consumer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "credentials-consumer.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
One configuration value as the environment variable's text. YAML numbers reach templates as
floats: 604800000 must not become "6.048e+08", and a null is unset, not "<nil>".
*/}}
{{- define "credentials-consumer.envText" -}}
{{- if kindIs "invalid" . -}}
{{- else if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{- define "credentials-consumer.setting" -}}
{{- include "credentials-consumer.envText" (index .Values.config .name) | trim -}}
{{- end -}}

{{/* The consumer group: CONSUMER_GROUP_ID, else <prefix>-credentials-consumer, else credentials-consumer. */}}
{{- define "credentials-consumer.groupId" -}}
{{- $group := include "credentials-consumer.envText" (index .Values.config "CONSUMER_GROUP_ID") | trim -}}
{{- $prefix := include "credentials-consumer.envText" (index .Values.config "EVENT_BUS_TOPIC_PREFIX") | trim -}}
{{- if $group -}}
{{- $group -}}
{{- else if $prefix -}}
{{- printf "%s-credentials-consumer" $prefix -}}
{{- else -}}
credentials-consumer
{{- end -}}
{{- end -}}

{{/* The consumed topics, prefixed as edx-event-bus-kafka names them, comma-separated. */}}
{{- define "credentials-consumer.topics" -}}
{{- $prefix := include "credentials-consumer.envText" (index .Values.config "EVENT_BUS_TOPIC_PREFIX") | trim -}}
{{- $listed := include "credentials-consumer.envText" (index .Values.config "CONSUMER_TOPICS") | trim -}}
{{- $topics := list -}}
{{- range splitList "," (required "config.CONSUMER_TOPICS must name the consumed topics" $listed) -}}
{{- $topic := trim . -}}
{{- if $topic -}}
{{- $topics = append $topics (ternary (printf "%s-%s" $prefix $topic) $topic (ne $prefix "")) -}}
{{- end -}}
{{- end -}}
{{- join "," $topics -}}
{{- end -}}

{{- define "credentials-consumer.metricsPort" -}}
{{- $port := include "credentials-consumer.envText" (index .Values.config "CONSUMER_METRICS_PORT") | trim -}}
{{- if or (eq $port "") (eq $port "0") -}}
{{- fail "config.CONSUMER_METRICS_PORT must be a port: the probes, the Service and the ServiceMonitor use it" -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/*
Kubernetes' grace period must outlast the worker's shutdown: the drain bound, plus the longest
a request already running may take (the HTTP read timeout, or the total request deadline when
it is set and longer), plus a margin for leaving the group and closing.
*/}}
{{- define "credentials-consumer.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- else -}}
{{- $drain := include "credentials-consumer.setting" (dict "Values" .Values "name" "CONSUMER_DRAIN_TIMEOUT_SECONDS") -}}
{{- $read := include "credentials-consumer.setting" (dict "Values" .Values "name" "CONSUMER_HTTP_READ_TIMEOUT") -}}
{{- $total := include "credentials-consumer.setting" (dict "Values" .Values "name" "CONSUMER_HTTP_TOTAL_TIMEOUT") -}}
{{- $drain = required "config.CONSUMER_DRAIN_TIMEOUT_SECONDS must be set: terminationGracePeriodSeconds is derived from it" $drain -}}
{{- $read = required "config.CONSUMER_HTTP_READ_TIMEOUT must be set: terminationGracePeriodSeconds is derived from it" $read -}}
{{- $request := maxf (float64 $read) (float64 (default "0" $total)) -}}
{{- addf (float64 $drain) $request .Values.terminationGraceMarginSeconds | ceil | int64 -}}
{{- end -}}
{{- end -}}

{{/* The Secret the pods read: existingSecret, or the chart's own when `secrets` has a value. */}}
{{- define "credentials-consumer.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else if include "credentials-consumer.secretData" . -}}
{{- include "credentials-consumer.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "credentials-consumer.secretData" -}}
{{- range $name, $value := .Values.secrets -}}
{{- $text := include "credentials-consumer.envText" $value -}}
{{- if $text }}
{{ $name }}: {{ $text | b64enc | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "credentials-consumer.configData" -}}
{{- $context := . -}}
{{- range $name, $value := .Values.config -}}
{{- $text := "" -}}
{{- if eq $name "CONSUMER_GROUP_ID" -}}
{{- $text = include "credentials-consumer.groupId" $context -}}
{{- else -}}
{{- $text = include "credentials-consumer.envText" $value -}}
{{- end -}}
{{- if ne $text "" }}
{{ $name }}: {{ $text | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether the worker authenticates to Kafka (SASL_SSL PLAIN), so KEDA must too. */}}
{{- define "credentials-consumer.kafkaSasl" -}}
{{- if eq .Values.keda.sasl "auto" -}}
{{- if .Values.secrets.EVENT_BUS_KAFKA_API_KEY -}}true{{- end -}}
{{- else if eq .Values.keda.sasl "plaintext" -}}true
{{- end -}}
{{- end -}}

{{/* Pod annotations that change whenever the configuration does, so pods roll. */}}
{{- define "credentials-consumer.checksums" -}}
checksum/config: {{ include "credentials-consumer.configData" . | sha256sum }}
checksum/secret: {{ include "credentials-consumer.secretData" . | sha256sum }}
{{- end -}}

{{/* What every pod of the chart shares: identity, security, placement. */}}
{{- define "credentials-consumer.podCommon" -}}
serviceAccountName: {{ include "credentials-consumer.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.extraVolumes }}
volumes:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* What every container of the chart shares: the image, the configuration, the restrictions. */}}
{{- define "credentials-consumer.containerCommon" -}}
image: {{ include "credentials-consumer.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
envFrom:
  - configMapRef:
      name: {{ include "credentials-consumer.fullname" . }}
{{- with include "credentials-consumer.secretName" . }}
  - secretRef:
      name: {{ . }}
{{- end }}
{{- with .Values.extraEnvFrom }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.extraEnv }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- with .Values.extraVolumeMounts }}
volumeMounts:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A Job's name: a digest of what it runs, so a changed Job is a new one (Jobs are immutable). */}}
{{- define "credentials-consumer.jobName" -}}
{{- $digest := list .args (include "credentials-consumer.image" .root) (include "credentials-consumer.checksums" .root) .job | toJson | sha256sum | trunc 8 -}}
{{- printf "%s-%s-%s" (include "credentials-consumer.fullname" .root | trunc 45 | trimSuffix "-") .kind $digest -}}
{{- end -}}
