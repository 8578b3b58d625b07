{{/* Chart name. */}}
{{- define "vmcp-normalizer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every resource name. Also the name of the
MutatingWebhookConfiguration and the Service, which the server is told about.
Kept to 52 characters so that "<fullname>-serving-cert" and friends stay valid.
*/}}
{{- define "vmcp-normalizer.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vmcp-normalizer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vmcp-normalizer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vmcp-normalizer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object: the chart's own, then commonLabels. commonLabels may
not set a label the chart sets (a duplicate key would be invalid YAML, and the
selector labels must stay the chart's).
*/}}
{{- define "vmcp-normalizer.labels" -}}
helm.sh/chart: {{ include "vmcp-normalizer.chart" . }}
{{ include "vmcp-normalizer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- include "vmcp-normalizer.commonLabels" . }}
{{- end }}

{{/* commonLabels as YAML lines (each with a leading newline), after checking them. */}}
{{- define "vmcp-normalizer.commonLabels" -}}
{{- $own := list "helm.sh/chart" "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/version" "app.kubernetes.io/component" "app.kubernetes.io/managed-by" }}
{{- range $key, $value := .Values.commonLabels }}
{{- if has $key $own }}
{{- fail (printf "commonLabels.%s: the chart sets this label itself; remove it from commonLabels" $key) }}
{{- end }}
{{- if not (kindIs "string" $value) }}
{{- fail (printf "commonLabels.%s must be a string (quote it: %q)" $key (toString $value)) }}
{{- end }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{- define "vmcp-normalizer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vmcp-normalizer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the self-managed server creates and rotates. */}}
{{- define "vmcp-normalizer.selfManagedSecretName" -}}
{{- printf "%s-tls" (include "vmcp-normalizer.fullname" .) }}
{{- end }}

{{/* cert-manager: the serving Certificate and its Secret. */}}
{{- define "vmcp-normalizer.servingCertificateName" -}}
{{- printf "%s-serving" (include "vmcp-normalizer.fullname" .) }}
{{- end }}
{{- define "vmcp-normalizer.servingSecretName" -}}
{{- printf "%s-serving-cert" (include "vmcp-normalizer.fullname" .) }}
{{- end }}

{{/* The Secret mounted at /certs in the file-based modes. */}}
{{- define "vmcp-normalizer.certSecretName" -}}
{{- if eq .Values.certificates.mode "cert-manager" }}
{{- include "vmcp-normalizer.servingSecretName" . }}
{{- else }}
{{- .Values.certificates.existingSecret }}
{{- end }}
{{- end }}

{{/*
The image reference. image.registry, when set, replaces the registry part of
image.repository (its first path element when that contains "." or ":" or is
"localhost", the rule Docker uses), or is put in front when it has none.
*/}}
{{- define "vmcp-normalizer.repository" -}}
{{- $repo := .Values.image.repository }}
{{- with .Values.image.registry }}
{{- $parts := splitList "/" $repo }}
{{- $first := first $parts }}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq "localhost" $first)) }}
{{- $repo = join "/" (rest $parts) }}
{{- end }}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}
{{- end }}
{{- $repo }}
{{- end }}

{{- define "vmcp-normalizer.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" (include "vmcp-normalizer.repository" .) .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" (include "vmcp-normalizer.repository" .) (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* Webhook names: fully qualified, unique per release. */}}
{{- define "vmcp-normalizer.webhookDomain" -}}
{{- printf "%s.%s.svc" (include "vmcp-normalizer.fullname" .) .Release.Namespace }}
{{- end }}

{{/* Namespaces the webhooks never see. */}}
{{- define "vmcp-normalizer.excludedNamespaces" -}}
{{- if not (kindIs "slice" .Values.webhook.excludedNamespaces) }}
{{- fail (printf "webhook.excludedNamespaces must be a list of namespace names, e.g. --set 'webhook.excludedNamespaces={team-a,team-b}' (got %s %q)" (kindOf .Values.webhook.excludedNamespaces) (toString .Values.webhook.excludedNamespaces)) }}
{{- end }}
{{- $ns := list .Release.Namespace "kube-system" "kube-node-lease" }}
{{- range .Values.webhook.excludedNamespaces }}
{{- $ns = append $ns (toString .) }}
{{- end }}
{{- toJson (uniq $ns) }}
{{- end }}

{{/*
Labels of the `helm test` objects. Not the selector labels: the Service and
the PodDisruptionBudget must never select the test Pod.
*/}}
{{- define "vmcp-normalizer.selftestLabels" -}}
helm.sh/chart: {{ include "vmcp-normalizer.chart" . }}
app.kubernetes.io/name: {{ printf "%s-selftest" (include "vmcp-normalizer.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: selftest
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* A `helm test` hook of the given weight, removed before the next run and once it passed. */}}
{{- define "vmcp-normalizer.selftestHook" -}}
helm.sh/hook: test
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/* The namespace `helm test` writes its probes in: selftest.namespace, or `default`. */}}
{{- define "vmcp-normalizer.selftestNamespace" -}}
{{- default "default" .Values.selftest.namespace | toString }}
{{- end }}

{{/* "true" when the webhook never sees the selftest namespace. */}}
{{- define "vmcp-normalizer.selftestNamespaceExcluded" -}}
{{- if has (include "vmcp-normalizer.selftestNamespace" .) (fromJsonArray (include "vmcp-normalizer.excludedNamespaces" .)) }}true{{ end }}
{{- end }}

{{/* "true" when the built-in preset toolhive-vmcp runs: no rules file, or one that includes it. */}}
{{- define "vmcp-normalizer.presetRuns" -}}
{{- if or (not .Values.rules) (has "toolhive-vmcp" (.Values.rules.include | default list)) -}}
true
{{- end -}}
{{- end }}

{{/* "true" when some declared rule links a workload (its checksum is read from ConfigMaps live). */}}
{{- define "vmcp-normalizer.rulesLinkWorkloads" -}}
{{- if .Values.rules -}}
{{- range (.Values.rules.rules | default list) -}}
{{- if .workload -}}true{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}
