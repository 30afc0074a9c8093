{{/* Chart name, truncated to 63 characters (DNS label). */}}
{{- define "dirsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name when it already contains the chart name. */}}
{{- define "dirsync.fullname" -}}
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

{{- define "dirsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dirsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dirsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dirsync.labels" -}}
helm.sh/chart: {{ include "dirsync.chart" . }}
{{ include "dirsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: dirsync
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "dirsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dirsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: explicitly, or because there is more than one replica. */}}
{{- define "dirsync.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "dirsync.leaseName" -}}
{{- default (printf "%s-leader" (include "dirsync.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "dirsync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The rules of shared/spec/operations.md, minus the Lease rules (see leaseRules). */}}
{{- define "dirsync.rbacRules" -}}
- apiGroups: ["dirsync.dev"]
  resources: ["directorysyncs"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["dirsync.dev"]
  resources: ["directorysyncs/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Opt-in (rbac.serviceAccountTokens): TokenRequest for Entra ID workload identity. */}}
{{- define "dirsync.tokenRule" -}}
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
  {{- with .Values.rbac.serviceAccountTokenNames }}
  resourceNames: {{ toJson . }}
  {{- end }}
{{- end }}

{{/*
The leader Lease, granted in the release namespace only and only with leader election on: get and
update of that one Lease by name; create cannot be limited by name (the object does not exist
yet when it is created), so it is a rule of its own.
*/}}
{{- define "dirsync.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "dirsync.leaseName" . | quote }}]
  verbs: ["get", "update"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
{{- end }}
