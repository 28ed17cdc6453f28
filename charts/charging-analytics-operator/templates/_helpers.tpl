{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "cha.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name used for every namespaced object of the release. */}}
{{- define "cha.fullname" -}}
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

{{/* Cluster-scoped objects share one namespace-less name space: qualify them with the namespace. */}}
{{- define "cha.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "cha.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cha.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cha.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cha.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cha.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: charging-analytics
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cha.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cha.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cha.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when replicas coordinate through Kopf peering. */}}
{{/* Kopf peering object name: derived from the release, so a second release (another namespace or
another name) never joins or freezes the first one's peering. The ClusterKopfPeering is
cluster-scoped, hence namespace-qualified. */}}
{{- define "cha.peeringName" -}}
{{- if .Values.peering.name }}
{{- .Values.peering.name }}
{{- else if empty .Values.watchNamespaces }}
{{- include "cha.clusterName" . }}
{{- else }}
{{- include "cha.fullname" . }}
{{- end }}
{{- end }}

{{- define "cha.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end }}
{{- end }}

{{/*
Fail early on combinations the schema cannot express clearly. Included by the Deployment,
which every rendering produces.
*/}}
{{- define "cha.validate" -}}
{{- if and (eq .Values.rbac.scope "namespaced") (empty .Values.watchNamespaces) }}
{{- fail "rbac.scope=namespaced needs watchNamespaces: a namespaced operator cannot serve all namespaces" }}
{{- end }}
{{- end }}

{{/*
RBAC rules for ChargingAnalytics work in the namespaces served. Rendered into a ClusterRole
(rbac.scope=cluster) or into one Role per watched namespace (rbac.scope=namespaced). Every rule
says which code path needs it.
*/}}
{{- define "cha.namespacedRules" -}}
# Kopf lists and watches the resources it serves, reads one on demand, and patches metadata
# (its finalizer analytics.evcharging.io/finalizer and its progress annotations). No update,
# create or delete: the operator never rewrites a user's spec.
- apiGroups: ["analytics.evcharging.io"]
  resources: ["charginganalytics"]
  verbs: ["get", "list", "watch", "patch"]
# Conditions, observedGeneration, objects[] and the plan summary go through the status subresource.
- apiGroups: ["analytics.evcharging.io"]
  resources: ["charginganalytics/status"]
  verbs: ["patch"]
# Credentials referenced by spec.*.credentialsSecretRef (RisingWave, Kafka SASL, PostgreSQL sink),
# always in the resource's own namespace; watched so a rotated password triggers a reconcile.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- if .Values.rbac.secretWrites }}
# Writes the credentials Secret of the SELECT-only dashboard user (spec.readOnlyUser). RBAC cannot
# restrict create by name; disable with rbac.secretWrites=false when no tenant uses readOnlyUser.
# The operator creates that Secret, and patches it back when it was edited or lost a key.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "patch"]
{{- end }}
{{- if .Values.rbac.dashboards }}
# The tenants' dashboards (spec.dashboards): a ConfigMap for the Grafana chart's sidecar, or a
# GrafanaDatasource and a GrafanaDashboard of the grafana-operator. Read to compare with the spec,
# listed by owner label to remove what the spec no longer wants, replaced to correct drift.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "update", "delete"]
# The same for the grafana-operator's kinds (whether they are installed is read from API
# discovery, which needs no rule).
- apiGroups: ["grafana.integreatly.org"]
  resources: ["grafanadashboards", "grafanadatasources"]
  verbs: ["get", "list", "create", "update", "delete"]
{{- end }}
# Kopf posts the operator's Events (Applied, DriftCorrected, ApprovalRequired, Stalled reasons,
# handler errors) on the resource through the core v1 API, always as new Events.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if and (include "cha.peering" .) .Values.watchNamespaces }}
# Kopf peering for an operator started with --namespace: replicas announce themselves and their
# priority in the KopfPeering of every served namespace; only the highest priority one works.
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}

{{/*
The OCPP gateway's objects. Its pods get their own app.kubernetes.io/name, so no selector of
the operator (Deployment, metrics Service, PodDisruptionBudget) ever matches them, nor the
other way round.
*/}}
{{- define "cha.gateway.fullname" -}}
{{- printf "%s-gateway" (include "cha.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cha.gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-gateway" (include "cha.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cha.gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cha.gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: charging-analytics
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cha.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "cha.gateway.fullname" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when the gateway reads its tenants from ChargingAnalytics resources. */}}
{{- define "cha.gateway.kubernetes" -}}
{{- if eq .Values.gateway.tenants.source "kubernetes" }}true{{ end }}
{{- end }}

{{- define "cha.gateway.validate" -}}
{{- if and (eq .Values.gateway.tenants.source "file") (empty .Values.gateway.tenants.secretName) }}
{{- fail "gateway.tenants.source=file needs gateway.tenants.secretName (a Secret holding the tenants file and the credentials files it names)" }}
{{- end }}
{{- if and (include "cha.gateway.kubernetes" .) (empty .Values.gateway.tenants.watchNamespaces) }}
{{- fail "gateway.tenants.source=kubernetes needs gateway.tenants.watchNamespaces (the gateway gets a Role in each, never cluster-wide Secret access)" }}
{{- end }}
{{- if and (include "cha.gateway.kubernetes" .) (empty .Values.gateway.state.bootstrapServers) }}
{{- fail "gateway.tenants.source=kubernetes needs gateway.state.bootstrapServers (Kafka of the gateway's compacted state topic)" }}
{{- end }}
{{- end }}
