{{/* Names, labels, the image, the shared environment and the checks of required values. */}}

{{- define "console.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "console.fullname" -}}
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

{{- define "console.selectorLabels" -}}
app.kubernetes.io/name: {{ include "console.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "console.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "console.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* A component's selector labels: include "console.componentSelector" (list $ "web") */}}
{{- define "console.componentSelector" -}}
{{ include "console.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "console.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "console.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "console.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret every process reads: yours (secrets.existingSecret) or the chart's. */}}
{{- define "console.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "console.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Fails the render, naming the value, when a required setting or secret is missing. */}}
{{- define "console.validate" -}}
{{- if not .Values.config.allowedHosts -}}
{{- fail "config.allowedHosts is required: the console's public host names, comma-separated (the production profile refuses to start without ALLOWED_HOSTS)" -}}
{{- end -}}
{{- if has "*" (splitList "," .Values.config.allowedHosts) -}}
{{- fail "config.allowedHosts must name the console's hosts, not \"*\" (the production profile refuses it)" -}}
{{- end -}}
{{- if not .Values.config.kafkaBootstrapServers -}}
{{- fail "config.kafkaBootstrapServers is required: host:port[,host:port] of the Kafka brokers" -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- range $key, $env := dict "secretKey" "SECRET_KEY" "databaseUrl" "DATABASE_URL" "redisUrl" "REDIS_URL" -}}
{{- if not (index $.Values.secrets $key) -}}
{{- fail (printf "secrets.%s (%s) is required: the chart has no default secrets. Give it (--set secrets.%s=...) or name a Secret of your own with secrets.existingSecret" $key $env $key) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.secrets.metricsToken) -}}
{{- fail "secrets.metricsToken (METRICS_TOKEN) is required with serviceMonitor.enabled: Prometheus scrapes /metrics with it as a bearer token" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (ne (toString .Values.config.secureSslRedirect) "false") -}}
{{- fail "serviceMonitor.enabled needs config.secureSslRedirect=false: Prometheus scrapes each pod over plain HTTP and Django would redirect /metrics to HTTPS; let the Ingress or load balancer redirect to HTTPS instead" -}}
{{- end -}}
{{- end -}}

{{/* The first allowed host, as the probes' Host header (Django checks Host against ALLOWED_HOSTS). */}}
{{- define "console.probeHost" -}}
{{- splitList "," .Values.config.allowedHosts | first | trim | trimPrefix "." -}}
{{- end -}}

{{/* The non-secret settings, as NAME: value lines (the ConfigMap's data, and the migration Job's env). */}}
{{- define "console.configData" -}}
{{- $origins := .Values.config.csrfTrustedOrigins -}}
{{- if not $origins -}}
{{- $list := list -}}
{{- range splitList "," .Values.config.allowedHosts -}}
{{- $host := trim . -}}
{{- if and $host (not (hasPrefix "." $host)) -}}
{{- $list = append $list (printf "https://%s" $host) -}}
{{- end -}}
{{- end -}}
{{- $origins = join "," $list -}}
{{- end -}}
DJANGO_SETTINGS_MODULE: {{ .Values.config.settingsModule | quote }}
ALLOWED_HOSTS: {{ .Values.config.allowedHosts | quote }}
CSRF_TRUSTED_ORIGINS: {{ $origins | quote }}
KAFKA_BOOTSTRAP_SERVERS: {{ .Values.config.kafkaBootstrapServers | quote }}
CONSUMER_GROUP_PREFIX: {{ .Values.config.consumerGroupPrefix | quote }}
SECURE_SSL_REDIRECT: {{ .Values.config.secureSslRedirect | toString | quote }}
LOG_FORMAT: {{ .Values.config.logFormat | quote }}
LOG_LEVEL: {{ .Values.config.logLevel | quote }}
INGEST_INBOX_DIR: "/data/inbox"
INGEST_QUARANTINE_DIR: "/data/quarantine"
{{- range $name, $value := .Values.config.extraEnv }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* A checksum of the settings, so pods roll when they change. Secrets stay out of it (a pod's
annotations are readable more widely than Secrets): after changing one, `kubectl rollout restart`. */}}
{{- define "console.configChecksum" -}}
{{- include "console.configData" . | sha256sum -}}
{{- end -}}

{{/* The pod spec's common part: service account, security, placement. */}}
{{- define "console.podCommon" -}}
serviceAccountName: {{ include "console.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
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
{{- end -}}

{{/* The pod template's metadata: include "console.podMetadata" (list $ "web") */}}
{{- define "console.podMetadata" -}}
{{- $ := index . 0 -}}
labels:
  {{- include "console.componentSelector" . | nindent 2 }}
  {{- with $.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "console.configChecksum" $ }}
  {{- with $.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* An app container's common part: image, environment, security, mounts. */}}
{{- define "console.containerCommon" -}}
image: {{ include "console.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
envFrom:
  - configMapRef:
      name: {{ include "console.fullname" . }}
  - secretRef:
      name: {{ include "console.secretName" . }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: data
    mountPath: /data
{{- end -}}

{{- define "console.volumes" -}}
- name: tmp
  emptyDir: {}
- name: data
{{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ .Values.persistence.existingClaim | default (printf "%s-data" (include "console.fullname" .)) }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{/* The chart's Secret data (when no existingSecret is named). */}}
{{- define "console.secretData" -}}
SECRET_KEY: {{ .Values.secrets.secretKey | quote }}
DATABASE_URL: {{ .Values.secrets.databaseUrl | quote }}
REDIS_URL: {{ .Values.secrets.redisUrl | quote }}
{{- with .Values.secrets.metricsToken }}
METRICS_TOKEN: {{ . | quote }}
{{- end }}
{{- with .Values.secrets.kafkaClientConfig }}
KAFKA_CLIENT_CONFIG: {{ . | quote }}
{{- end }}
{{- range $name, $value := .Values.secrets.extraEnv }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
