{{/* The chart name, or nameOverride. */}}
{{- define "angos.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name: <release>-angos, or the release name when it holds "angos". */}}
{{- define "angos.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "angos.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "angos.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "angos.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "angos.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: pass (dict "root" $ "component" "gateway"). */}}
{{- define "angos.selectorLabels" -}}
app.kubernetes.io/name: {{ include "angos.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image tag: image.tag, or the chart's appVersion. One tag for every workload. */}}
{{- define "angos.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "angos.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "angos.tag" .) -}}
{{- end -}}

{{- define "angos.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "angos.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding config.toml. */}}
{{- define "angos.configSecretName" -}}
{{- default (printf "%s-config" (include "angos.fullname" .)) .Values.config.existingSecret -}}
{{- end -}}

{{/* The Service clients reach: the server in single mode, the gateway in split mode. */}}
{{- define "angos.frontComponent" -}}
{{- if eq .Values.mode "split" -}}gateway{{- else -}}server{{- end -}}
{{- end -}}

{{/*
The Angos components of split mode: name, subcommand, port and values key. The worker's port
serves only /healthz, /readyz and /metrics.
*/}}
{{- define "angos.splitComponents" -}}
gateway: {port: 8000, values: gateway}
registry-api: {port: 8001, values: registryApi}
{{- if .Values.pullThroughCache.enabled }}
pull-through-cache: {port: 8003, values: pullThroughCache}
{{- end }}
{{- end -}}

{{/*
`--workers N` when a component's `workers` value is set, nothing when it is null (the service then
runs one serving thread per CPU its container may use): pass the component's values.
*/}}
{{- define "angos.workersArgs" -}}
{{- if not (kindIs "invalid" .workers) -}}
{{- list "--workers" (toString (int .workers)) | toJson -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/*
The pod spec shared by every Angos workload: pass (dict "root" $ "component" "gateway"
"args" (list ...) "port" 8000 "resources" (dict) "probes" true "extraVolumes" (list)
"extraMounts" (list)). The configuration Secret is mounted as a directory, never with subPath:
the kubelet replaces the files atomically and Angos's watcher reloads them.
*/}}
{{- define "angos.podSpec" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "angos.serviceAccountName" $root }}
automountServiceAccountToken: false
terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .restartPolicy }}
restartPolicy: {{ . }}
{{- end }}
containers:
  - name: {{ .component }}
    image: {{ include "angos.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args:
      {{- toYaml (concat (list "-c" "/etc/angos/config.toml") .args) | nindent 6 }}
    env:
      - name: NODE_ENV
        value: production
      - name: RUST_LOG
        value: {{ $root.Values.logLevel | quote }}
      {{- with $root.Values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- if .port }}
    ports:
      - name: http
        containerPort: {{ .port }}
        protocol: TCP
    {{- end }}
    {{- if .probes }}
    livenessProbe:
      httpGet:
        path: /healthz
        port: http
      periodSeconds: 10
      timeoutSeconds: 5
      failureThreshold: 6
    readinessProbe:
      httpGet:
        path: /readyz
        port: http
      periodSeconds: 5
      timeoutSeconds: 5
      failureThreshold: 3
    {{- end }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    {{- with .resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: config
        mountPath: /etc/angos
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- with .extraMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: config
    secret:
      secretName: {{ include "angos.configSecretName" $root }}
  - name: tmp
    emptyDir: {}
  {{- with .extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
