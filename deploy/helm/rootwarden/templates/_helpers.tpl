{{- define "rootwarden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rootwarden.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "rootwarden.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "rootwarden.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rootwarden.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "rootwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rootwarden.selector" -}}
app.kubernetes.io/name: {{ include "rootwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rootwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rootwarden.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rootwarden.secretName" -}}
{{- default (include "rootwarden.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Seconds in a Go duration (config.ROOTWARDEN_SLA, …), as the binary parses it with
time.ParseDuration: 15m, 24h, 1h30m, 90s. Call with (dict "name" "ROOTWARDEN_SLA" "value" …). */}}
{{- define "rootwarden.seconds" -}}
{{- $s := toString .value -}}
{{- $unit := "(ns|us|µs|ms|s|m|h)" -}}
{{- $num := "([0-9]+(\\.[0-9]*)?|\\.[0-9]+)" -}}
{{- if not (regexMatch (printf "^(%s%s)+$" $num $unit) $s) -}}
{{- fail (printf "config.%s=%q is not a duration like 15m or 24h (the PrometheusRule's thresholds are derived from it)" .name $s) -}}
{{- end -}}
{{- $factor := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "ms" 0.001 "s" 1 "m" 60 "h" 3600 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll (printf "%s%s" $num $unit) $s -1 -}}
{{- $n := regexFind (printf "^%s" $num) . -}}
{{- $total = addf $total (mulf (float64 $n) (get $factor (trimPrefix $n .))) -}}
{{- end -}}
{{- if le $total 0.0 -}}
{{- fail (printf "config.%s=%q: must be positive" .name $s) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{- define "rootwarden.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The pod spec shared by every mode. Call with (dict "root" $ "component" "run|detector|…" "resources" …). */}}
{{- define "rootwarden.podSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
serviceAccountName: {{ include "rootwarden.serviceAccountName" $root }}
automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
{{- with $v.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
securityContext: {{- toYaml $v.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: 30
{{- with $v.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: rootwarden
    image: {{ include "rootwarden.image" $root }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args: [{{ .component | quote }}]
    ports:
      - name: http
        containerPort: {{ $v.service.httpPort }}
        protocol: TCP
      {{- if and $v.slack.httpInteractions (has .component (list "run" "notifier")) }}
      - name: slack
        containerPort: {{ $v.service.slackPort }}
        protocol: TCP
      {{- end }}
    env:
      - name: ROOTWARDEN_HTTP_ADDR
        value: {{ printf ":%v" $v.service.httpPort | quote }}
      {{- if and $v.slack.httpInteractions (has .component (list "run" "notifier")) }}
      - name: ROOTWARDEN_SLACK_HTTP_ADDR
        value: {{ printf ":%v" $v.service.slackPort | quote }}
      {{- end }}
      {{- if eq $v.mode "allInOne" }}
      - name: ROOTWARDEN_DATA_DIR
        value: /data
      {{- else }}
      - name: ROOTWARDEN_NATS_URL
        value: {{ $v.nats.url | quote }}
      - name: ROOTWARDEN_NATS_REPLICAS
        value: {{ $v.nats.replicas | quote }}
      {{- if $v.nats.credsSecret }}
      - name: ROOTWARDEN_NATS_CREDS
        value: /var/run/secrets/nats/creds
      {{- end }}
      {{- end }}
      {{- range $k, $val := $v.config }}
      {{- if ne (toString $val) "" }}
      - name: {{ $k }}
        value: {{ $val | toString | quote }}
      {{- end }}
      {{- end }}
      {{- range $k, $val := $v.extraEnv }}
      - name: {{ $k }}
        value: {{ $val | toString | quote }}
      {{- end }}
      {{- /* Only the keys the Secret has: secrets.keys with an existing Secret (the
             default is the two required keys), the keys given a value otherwise. A
             *_FILE whose file is missing stops the binary at start-up. */}}
      {{- $present := $v.secrets.values }}
      {{- range $key, $var := $v.secrets.keys }}
      {{- if and $var (or $v.secrets.existingSecret (hasKey $present $key)) }}
      - name: {{ $var }}_FILE
        value: /var/run/secrets/rootwarden/{{ $key }}
      {{- end }}
      {{- end }}
    {{- with .resources }}
    resources: {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext: {{- toYaml $v.securityContext | nindent 6 }}
    startupProbe:
      httpGet: {path: /healthz, port: http}
      {{- toYaml $v.probes.startup | nindent 6 }}
    readinessProbe:
      httpGet: {path: /readyz, port: http}
      {{- toYaml $v.probes.readiness | nindent 6 }}
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      {{- toYaml $v.probes.liveness | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      - name: secrets
        mountPath: /var/run/secrets/rootwarden
        readOnly: true
      {{- if eq $v.mode "allInOne" }}
      - name: data
        mountPath: /data
      {{- else if $v.nats.credsSecret }}
      - name: nats-creds
        mountPath: /var/run/secrets/nats
        readOnly: true
      {{- end }}
volumes:
  - name: tmp
    emptyDir: {sizeLimit: 64Mi}
  - name: secrets
    secret:
      secretName: {{ include "rootwarden.secretName" $root }}
      defaultMode: 0440
      optional: false
  {{- if and (ne $v.mode "allInOne") $v.nats.credsSecret }}
  - name: nats-creds
    secret:
      secretName: {{ $v.nats.credsSecret }}
      defaultMode: 0440
      items: [{key: creds, path: creds}]
  {{- end }}
{{- end -}}
