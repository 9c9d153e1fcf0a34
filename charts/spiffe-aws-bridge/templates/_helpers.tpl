{{/* Names and labels shared by every template. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "sab.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resource name prefix: fullnameOverride, else RELEASE-NAME (RELEASE alone when it contains NAME). */}}
{{- define "sab.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The node bridge's and the webhook's names (ServiceAccount, DaemonSet/Deployment, roles). */}}
{{- define "sab.bridgeName" -}}
{{- printf "%s-node" (include "sab.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "sab.webhookName" -}}
{{- printf "%s-webhook" (include "sab.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Chart label value. */}}
{{- define "sab.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels; pass (dict "ctx" $ "component" "node"). */}}
{{- define "sab.labels" -}}
helm.sh/chart: {{ include "sab.chart" .ctx }}
{{ include "sab.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: spiffe-aws-bridge
{{- end }}

{{/* Selector labels; pass (dict "ctx" $ "component" "node"). */}}
{{- define "sab.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sab.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image reference. */}}
{{- define "sab.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* An HCL string literal: JSON's quoting, with HCL's template sequences ${ and %{ escaped. */}}
{{- define "sab.hcl" -}}
{{- . | toString | toJson | replace "${" "$${" | replace "%{" "%%{" }}
{{- end }}

{{/* The webhook's CA Secret (self-signed mode) and its Certificate's Secret (cert-manager). */}}
{{- define "sab.webhookCASecret" -}}
{{- printf "%s-ca" (include "sab.webhookName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "sab.webhookTLSSecret" -}}
{{- printf "%s-tls" (include "sab.webhookName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
