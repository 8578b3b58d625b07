{{/*
Helpers of the monitoring templates (PrometheusRule, Grafana dashboard).
*/}}

{{/*
PromQL label matchers that pick this release's webhook metrics: by default
what the ServiceMonitor's scrape gives them (job = the Service's name).
*/}}
{{- define "vmcp-normalizer.metricSelector" -}}
{{- if .Values.prometheusRule.selector }}
{{- .Values.prometheusRule.selector }}
{{- else }}
{{- printf "job=%q,namespace=%q" (include "vmcp-normalizer.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
A regular expression matching exactly the names of the enabled webhooks in
the MutatingWebhookConfiguration (the apiserver's `name` label). Dots are
written [.] so no backslash has to survive YAML and PromQL quoting.
*/}}
{{- define "vmcp-normalizer.webhookNamesRegex" -}}
{{- $domain := include "vmcp-normalizer.webhookDomain" . }}
{{- $names := list }}
{{- if .Values.webhook.configMaps.enabled }}
{{- $names = append $names (printf "configmaps.%s" $domain) }}
{{- end }}
{{- if .Values.webhook.deployments.enabled }}
{{- $names = append $names (printf "deployments.%s" $domain) }}
{{- end }}
{{- join "|" $names | replace "." "[.]" }}
{{- end }}

{{/* The namespaces the webhooks never see, as a regular expression. */}}
{{- define "vmcp-normalizer.excludedNamespacesRegex" -}}
{{- include "vmcp-normalizer.excludedNamespaces" . | fromJsonArray | join "|" }}
{{- end }}
