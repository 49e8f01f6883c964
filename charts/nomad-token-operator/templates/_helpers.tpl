{{/* Names and labels shared by every template. */}}

{{- define "nomad-token-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object's name: "nomad-token-operator" for a release of that name (so the
objects are named as config/default names them), "<release>-nomad-token-operator" otherwise.
*/}}
{{- define "nomad-token-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "nomad-token-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "nomad-token-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* What the Deployment's pods carry and the metrics Service selects. */}}
{{- define "nomad-token-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nomad-token-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{- define "nomad-token-operator.labels" -}}
helm.sh/chart: {{ include "nomad-token-operator.chart" . }}
{{ include "nomad-token-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "nomad-token-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-controller-manager" (include "nomad-token-operator.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is given (it wins over the tag). */}}
{{- define "nomad-token-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The subject every binding of the manager's roles names. */}}
{{- define "nomad-token-operator.subject" -}}
- kind: ServiceAccount
  name: {{ include "nomad-token-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/*
The generated ClusterRoles (files/manager-rbac.yaml, a copy of config/rbac/role.yaml that
`make manifests` writes), as a list of objects. The rules are never written here by hand, so they
cannot drift from the controllers' RBAC markers.
*/}}
{{- define "nomad-token-operator.generatedRoles" -}}
{{- $roles := list -}}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.Files.Get "files/manager-rbac.yaml") -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if and $obj (eq (get $obj "kind") "ClusterRole") -}}
{{- $roles = append $roles $obj -}}
{{- end -}}
{{- end -}}
{{- if not $roles -}}
{{- fail "files/manager-rbac.yaml holds no ClusterRole: run `make manifests`" -}}
{{- end -}}
{{- toYaml (dict "roles" $roles) -}}
{{- end -}}

{{/* The manager's flags from the values; flags left null keep the manager's own default. */}}
{{- define "nomad-token-operator.args" -}}
{{- $m := .Values.manager -}}
- --leader-elect={{ .Values.leaderElection.enabled }}
- --health-probe-bind-address=:{{ .Values.healthProbe.port }}
{{- if .Values.metrics.enabled }}
- --metrics-bind-address=:{{ .Values.metrics.port }}
- --metrics-secure={{ .Values.metrics.secure }}
{{- else }}
- --metrics-bind-address=0
{{- end }}
{{- with .Values.watchNamespaces }}
- --watch-namespaces={{ join "," . }}
{{- end }}
{{- with $m.clusterResourceNamespace }}
- --cluster-resource-namespace={{ . }}
{{- end }}
{{- with $m.logLevel }}
- --zap-log-level={{ . }}
{{- end }}
{{- with $m.allowedNomadURLs }}
- --allowed-nomad-urls={{ join "," . }}
{{- end }}
{{- range $flag, $key := dict "nomad-pat-limit" "nomadPATLimit" "pat-limit-warning-ratio" "patLimitWarningRatio" "orphan-sweep" "orphanSweep" "verification-interval" "verificationInterval" "sync-period" "syncPeriod" }}
{{- $v := get $m $key }}
{{- if not (kindIs "invalid" $v) }}
- --{{ $flag }}={{ include "nomad-token-operator.flagValue" $v }}
{{- end }}
{{- end }}
{{- range $flag, $key := dict "max-concurrent-reconciles" "maxConcurrentReconciles" "connection-max-concurrent-reconciles" "connectionMaxConcurrentReconciles" "kube-api-qps" "kubeAPIQPS" "kube-api-burst" "kubeAPIBurst" "nomad-max-in-flight" "nomadMaxInFlight" "nomad-request-timeout" "nomadRequestTimeout" }}
{{- $v := get $m.concurrency $key }}
{{- if not (kindIs "invalid" $v) }}
- --{{ $flag }}={{ include "nomad-token-operator.flagValue" $v }}
{{- end }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}


{{/*
A flag's value as the manager parses it. Helm reads every YAML number as a float64, which prints
large whole numbers in exponent form (1e+06) that integer flags refuse: whole numbers print as
integers.
*/}}
{{- define "nomad-token-operator.flagValue" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}
