{{/* Names: the release's, at most 63 characters; "durapay" when the release is called so. */}}
{{- define "durapay.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "durapay.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "durapay.labels" -}}
{{ include "durapay.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: durapay
{{- end -}}

{{/* An image tag: the given one, else the chart's appVersion; never latest. */}}
{{- define "durapay.tag" -}}
{{- $tag := toString (default .root.Chart.AppVersion .tag) -}}
{{- if eq $tag "latest" -}}
{{- fail (printf "%s: `latest` is not a tag to deploy: pin the image to a version" .what) -}}
{{- end -}}
{{- $tag -}}
{{- end -}}

{{- define "durapay.apiImage" -}}
{{- printf "%s:%s" .Values.image.api.repository (include "durapay.tag" (dict "root" . "tag" .Values.image.api.tag "what" "image.api.tag")) -}}
{{- end -}}

{{/*
The worker builds, newest first, as JSON: [{tag, buildId, suffix, replicas}]. The tag is the image's and Temporal's
build id; the suffix is its DNS-safe form for names and labels. Fails on a tag Temporal would refuse, or two tags
with one suffix.
*/}}
{{- define "durapay.workerBuilds" -}}
{{- $builds := list -}}
{{- $given := .Values.worker.builds | default (list (dict "tag" .Values.image.worker.tag)) -}}
{{- $seen := dict -}}
{{- range $i, $build := $given -}}
{{- $tag := include "durapay.tag" (dict "root" $ "tag" $build.tag "what" (printf "worker.builds[%d].tag" $i)) -}}
{{- if not (regexMatch "^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$" $tag) -}}
{{- fail (printf "worker.builds[%d].tag %q is not an image tag Temporal takes as a build id (letters, digits, _ . and -, at most 128, not starting with . or -)" $i $tag) -}}
{{- end -}}
{{- $suffix := regexReplaceAll "[^a-z0-9-]+" (lower $tag) "-" | trunc 40 | trimAll "-" -}}
{{- if hasKey $seen $suffix -}}
{{- fail (printf "worker.builds: the tags %q and %q both become the Deployment suffix %q; use distinct tags" (get $seen $suffix) $tag $suffix) -}}
{{- end -}}
{{- $_ := set $seen $suffix $tag -}}
{{- $replicas := $.Values.worker.replicas -}}
{{- if hasKey $build "replicas" -}}{{- $replicas = $build.replicas -}}{{- end -}}
{{- $builds = append $builds (dict "tag" $tag "buildId" $tag "suffix" $suffix "replicas" $replicas) -}}
{{- end -}}
{{- toJson $builds -}}
{{- end -}}

{{/* A duration of WORKER_SHUTDOWN_GRACE's form (500ms, 30s, 2m, 1h) in whole seconds, rounded up. */}}
{{- define "durapay.durationSeconds" -}}
{{- $text := toString . -}}
{{- if not (regexMatch "^[0-9]+(ms|s|m|h)$" $text) -}}
{{- fail (printf "worker.shutdownGrace %q is not a duration like 500ms, 30s, 2m or 1h" $text) -}}
{{- end -}}
{{- $n := regexFind "^[0-9]+" $text | atoi -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" $text) $text -}}
{{- if eq $unit "ms" -}}{{ div (add $n 999) 1000 }}
{{- else if eq $unit "s" -}}{{ $n }}
{{- else if eq $unit "m" -}}{{ mul $n 60 }}
{{- else -}}{{ mul $n 3600 }}
{{- end -}}
{{- end -}}

{{/* Where the secret files are mounted in every container. */}}
{{- define "durapay.secretDir" -}}/run/secrets/durapay{{- end -}}

{{/*
The projected volume of the Secrets one role may read: role is "api", "worker", "migration" or "set-current". The API
never gets the app's private key, the app certificate or the master key; the worker and the migration never get the
API keys; the migration gets the database and the master key only, the set-current hook Temporal's credentials only.
*/}}
{{- define "durapay.secretVolume" -}}
{{- $v := .root.Values -}}
{{- $role := .role -}}
{{- $sources := list -}}
{{- if has $role (list "worker" "migration") -}}
{{- $sources = append $sources (dict "name" $v.secrets.masterKey.existingSecret "items" (list (dict "key" $v.secrets.masterKey.key "path" "master-key"))) -}}
{{- end -}}
{{- if eq $role "api" -}}
{{- $sources = append $sources (dict "name" $v.secrets.apiKeys.existingSecret "items" (list (dict "key" $v.secrets.apiKeys.key "path" "api-keys"))) -}}
{{- if $v.secrets.opsToken.existingSecret -}}
{{- $sources = append $sources (dict "name" $v.secrets.opsToken.existingSecret "items" (list (dict "key" $v.secrets.opsToken.key "path" "ops-token"))) -}}
{{- end -}}
{{- end -}}
{{- if has $role (list "api" "worker") -}}
{{- $items := list -}}
{{- if eq $role "worker" -}}
{{- $items = append $items (dict "key" $v.alipay.keys.privateKey "path" "alipay-app-private-key.pem") -}}
{{- end -}}
{{- if $v.alipay.keys.publicKey -}}
{{- $items = append $items (dict "key" $v.alipay.keys.publicKey "path" "alipay-public-key.pem") -}}
{{- end -}}
{{- if $items -}}
{{- $sources = append $sources (dict "name" $v.alipay.keys.existingSecret "items" $items) -}}
{{- end -}}
{{- with $v.alipay.certificates -}}
{{- if .existingSecret -}}
{{- $items = list -}}
{{- if eq $role "worker" -}}
{{- $items = append $items (dict "key" .appCert "path" "alipay-app-cert.crt") -}}
{{- end -}}
{{- $items = append $items (dict "key" .publicCert "path" "alipay-public-cert.crt") -}}
{{- $items = append $items (dict "key" .rootCert "path" "alipay-root-cert.crt") -}}
{{- $sources = append $sources (dict "name" .existingSecret "items" $items) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if has $role (list "api" "worker" "set-current") -}}
{{- with $v.temporal.tls -}}
{{- if and .enabled .existingSecret -}}
{{- $items := list -}}
{{- if .certKey }}{{ $items = append $items (dict "key" .certKey "path" "temporal-tls.crt") }}{{ end -}}
{{- if .keyKey }}{{ $items = append $items (dict "key" .keyKey "path" "temporal-tls.key") }}{{ end -}}
{{- if .caKey }}{{ $items = append $items (dict "key" .caKey "path" "temporal-ca.crt") }}{{ end -}}
{{- if $items -}}
{{- $sources = append $sources (dict "name" .existingSecret "items" $items) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $v.temporal.apiKey.existingSecret -}}
{{- $sources = append $sources (dict "name" $v.temporal.apiKey.existingSecret "items" (list (dict "key" $v.temporal.apiKey.key "path" "temporal-api-key"))) -}}
{{- end -}}
{{- end -}}
{{- if $sources -}}
- name: secrets
  projected:
    # 0440: the image's node user reads them through fsGroup.
    defaultMode: 288
    sources:
      {{- range $sources }}
      - secret:
          {{- toYaml . | nindent 10 }}
      {{- end }}
{{ end -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/* The mounts of secretVolume's volumes: the same root and role. */}}
{{- define "durapay.volumeMounts" -}}
{{- if contains "name: secrets" (include "durapay.secretVolume" .) -}}
- name: secrets
  mountPath: {{ include "durapay.secretDir" .root }}
  readOnly: true
{{ end -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* DATABASE_URL, from its Secret: never a value. */}}
{{- define "durapay.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.database.existingSecret }}
      key: {{ .Values.secrets.database.key }}
{{- end -}}

{{/* Variables whose values are secrets: they come from Secrets as files (NAME_FILE) or secretKeyRef, never as values. */}}
{{- define "durapay.secretVariables" -}}
DATABASE_URL ALIPAY_PRIVATE_KEY ALIPAY_PUBLIC_KEY ALIPAY_APP_CERT ALIPAY_PUBLIC_CERT ALIPAY_ROOT_CERT OPS_TOKEN DURAPAY_MASTER_KEY DURAPAY_API_KEYS TEMPORAL_TLS_CERT TEMPORAL_TLS_KEY TEMPORAL_TLS_CA TEMPORAL_API_KEY
{{- end -}}

{{/* name: value pairs of extraEnv maps, refusing secrets. */}}
{{- define "durapay.extraEnv" -}}
{{- $secret := splitList " " (include "durapay.secretVariables" .root) -}}
{{- $env := dict -}}
{{- range $map := .maps }}{{ $env = merge (deepCopy $map) $env }}{{ end -}}
{{- range $name, $value := $env -}}
{{- if has $name $secret -}}
{{- fail (printf "extraEnv: %s is a secret; it comes from a Secret the chart mounts (see values.yaml's secrets), never from values" $name) -}}
{{- end }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{ end -}}
{{- end -}}

{{/* What the API and the worker share: Alipay, Temporal, the database, the logs. role: "api" or "worker". */}}
{{- define "durapay.commonEnv" -}}
{{- $v := .root.Values -}}
{{- $dir := include "durapay.secretDir" .root -}}
{{ include "durapay.databaseEnv" .root }}
- name: ALIPAY_GATEWAY_URL
  value: {{ $v.alipay.gatewayUrl | quote }}
- name: ALIPAY_APP_ID
  value: {{ required "alipay.appId is required: the Alipay app id" $v.alipay.appId | toString | quote }}
{{- with $v.alipay.sellerId }}
- name: ALIPAY_SELLER_ID
  value: {{ toString . | quote }}
{{- end }}
- name: ALIPAY_NOTIFY_URL
  value: {{ required "alipay.notifyUrl is required: the public URL of /alipay/notify" $v.alipay.notifyUrl | quote }}
{{- if $v.alipay.keys.publicKey }}
- name: ALIPAY_PUBLIC_KEY_FILE
  value: {{ $dir }}/alipay-public-key.pem
{{- end }}
{{- if $v.alipay.certificates.existingSecret }}
{{- if eq .role "worker" }}
- name: ALIPAY_APP_CERT_FILE
  value: {{ $dir }}/alipay-app-cert.crt
{{- end }}
- name: ALIPAY_PUBLIC_CERT_FILE
  value: {{ $dir }}/alipay-public-cert.crt
- name: ALIPAY_ROOT_CERT_FILE
  value: {{ $dir }}/alipay-root-cert.crt
{{- end }}
- name: TEMPORAL_ADDRESS
  value: {{ required "temporal.address is required: the Temporal frontend's host:port" $v.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ $v.temporal.namespace | quote }}
- name: TEMPORAL_TASK_QUEUE
  value: {{ $v.temporal.taskQueue | quote }}
{{- with $v.temporal.tls }}
{{- if .enabled }}
- name: TEMPORAL_TLS
  value: "on"
{{- with .serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- if .existingSecret }}
{{- if .certKey }}
- name: TEMPORAL_TLS_CERT_FILE
  value: {{ $dir }}/temporal-tls.crt
{{- end }}
{{- if .keyKey }}
- name: TEMPORAL_TLS_KEY_FILE
  value: {{ $dir }}/temporal-tls.key
{{- end }}
{{- if .caKey }}
- name: TEMPORAL_TLS_CA_FILE
  value: {{ $dir }}/temporal-ca.crt
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if $v.temporal.apiKey.existingSecret }}
- name: TEMPORAL_API_KEY_FILE
  value: {{ $dir }}/temporal-api-key
{{- end }}
{{- end -}}

{{- define "durapay.podAnnotations" -}}
{{- $annotations := dict -}}
{{- if .root.Values.metrics.podAnnotations -}}
{{- $annotations = dict "prometheus.io/scrape" "true" "prometheus.io/port" (toString .port) "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- with .extra }}{{ $annotations = merge (deepCopy .) $annotations }}{{ end -}}
{{- if $annotations }}{{ toYaml $annotations }}{{ end -}}
{{- end -}}

{{- define "durapay.podSpecCommon" -}}
automountServiceAccountToken: false
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}
