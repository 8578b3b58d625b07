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

{{- define "vmcp-normalizer.labels" -}}
helm.sh/chart: {{ include "vmcp-normalizer.chart" . }}
{{ include "vmcp-normalizer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/managed-by: {{ .Release.Service }}
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

{{- define "vmcp-normalizer.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* Webhook names: fully qualified, unique per release. */}}
{{- define "vmcp-normalizer.webhookDomain" -}}
{{- printf "%s.%s.svc" (include "vmcp-normalizer.fullname" .) .Release.Namespace }}
{{- end }}

{{/* Namespaces the webhooks never see. */}}
{{- define "vmcp-normalizer.excludedNamespaces" -}}
{{- $ns := list .Release.Namespace "kube-system" "kube-node-lease" }}
{{- range .Values.webhook.excludedNamespaces }}
{{- $ns = append $ns (toString .) }}
{{- end }}
{{- toJson (uniq $ns) }}
{{- end }}

{{/*
Validate values. Rendered (as nothing) by every template that depends on them,
so a bad value fails `helm template`/`helm install` with a clear message.
*/}}
{{- define "vmcp-normalizer.validate" -}}
{{- $mode := .Values.certificates.mode }}
{{- if not (has $mode (list "self-managed" "cert-manager" "existing-secret")) }}
{{- fail (printf "certificates.mode must be one of self-managed, cert-manager, existing-secret (got %q)" (toString $mode)) }}
{{- end }}
{{- if eq $mode "existing-secret" }}
{{- if not .Values.certificates.existingSecret }}
{{- fail "certificates.mode=existing-secret needs certificates.existingSecret: the name of a Secret in the release namespace with tls.crt and tls.key" }}
{{- end }}
{{- if not .Values.certificates.caBundle }}
{{- fail "certificates.mode=existing-secret needs certificates.caBundle: the base64-encoded PEM of the CA that signed the serving certificate" }}
{{- end }}
{{- $pem := b64dec .Values.certificates.caBundle }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" $pem) }}
{{- fail "certificates.caBundle must be base64 of PEM CA certificate(s) (-----BEGIN CERTIFICATE-----)" }}
{{- end }}
{{- if contains "PRIVATE KEY" $pem }}
{{- fail "certificates.caBundle contains a PRIVATE KEY: put only the CA certificate in it" }}
{{- end }}
{{- end }}
{{- if not (has .Values.webhook.failurePolicy (list "Ignore" "Fail")) }}
{{- fail (printf "webhook.failurePolicy must be Ignore or Fail (got %q)" (toString .Values.webhook.failurePolicy)) }}
{{- end }}
{{- $timeout := .Values.webhook.timeoutSeconds }}
{{- if not (or (kindIs "int" $timeout) (kindIs "int64" $timeout) (kindIs "float64" $timeout)) }}
{{- fail (printf "webhook.timeoutSeconds must be a number from 1 to 30 (got %v)" $timeout) }}
{{- end }}
{{- if or (lt (float64 $timeout) 1.0) (gt (float64 $timeout) 30.0) (ne (float64 $timeout) (float64 (int $timeout))) }}
{{- fail (printf "webhook.timeoutSeconds must be a whole number from 1 to 30 (got %v)" $timeout) }}
{{- end }}
{{- if lt (int .Values.replicas) 1 }}
{{- fail "replicas must be at least 1" }}
{{- end }}
{{- if eq .Values.webhook.failurePolicy "Fail" }}
{{- if or (lt (int .Values.replicas) 2) (not .Values.podDisruptionBudget.enabled) }}
{{- fail "webhook.failurePolicy=Fail needs replicas >= 2 and podDisruptionBudget.enabled=true: with one pod, every vMCP write fails while it restarts" }}
{{- end }}
{{- end }}
{{- if not (or .Values.webhook.configMaps.enabled .Values.webhook.deployments.enabled) }}
{{- fail "enable at least one of webhook.configMaps.enabled and webhook.deployments.enabled" }}
{{- end }}
{{- if not (has .Values.logFormat (list "json" "text")) }}
{{- fail (printf "logFormat must be json or text (got %q)" (toString .Values.logFormat)) }}
{{- end }}
{{- if and .Values.image.digest (not (hasPrefix "sha256:" .Values.image.digest)) }}
{{- fail "image.digest must look like sha256:<hex>" }}
{{- end }}
{{- if and (gt (int .Values.preStopSleepSeconds) 0) (ge (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds)) }}
{{- fail "terminationGracePeriodSeconds must be greater than preStopSleepSeconds (plus the server's drain deadline)" }}
{{- end }}
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
