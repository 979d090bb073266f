{{/* <fullname>: resource-name prefix (fullnameOverride, default "mlplat"). */}}
{{- define "mlplat.fullname" -}}
{{- default "mlplat" .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "mlplat.labels" -}}
app.kubernetes.io/name: mlplat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "platform"). */}}
{{- define "mlplat.selector" -}}
app.kubernetes.io/name: mlplat
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mlplat.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{- define "mlplat.serviceAccountName" -}}
{{- if .Values.platform.serviceAccount.create -}}
{{- default (printf "%s-platform" (include "mlplat.fullname" .)) .Values.platform.serviceAccount.name -}}
{{- else -}}
{{- required "platform.serviceAccount.name is required when platform.serviceAccount.create is false" .Values.platform.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* One environment variable from the chart's Secret: (dict "name" "X" "key" "k" "root" $). */}}
{{- define "mlplat.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secretName }}
      key: {{ .key }}
{{- end -}}

{{/* Pod and container security contexts that Pod Security Admission "restricted" accepts. */}}
{{- define "mlplat.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mlplat.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Values that must agree with each other: the hub's URLs name this chart's Services, and
every namespace the profiles spawn into is a team namespace this chart governs. */}}
{{- define "mlplat.checks" -}}
{{- if .Values.jupyterhub.enabled -}}
{{- $governed := list -}}
{{- range .Values.teams -}}
{{- $governed = append $governed (.namespace | default (printf "mlplat-%s" .name)) -}}
{{- end -}}
{{- range (dig "custom" "mlplat" "namespaces" list .Values.jupyterhub) -}}
{{- if not (has . $governed) -}}
{{- fail (printf "The profiles spawn servers into namespace %s, which no entry of teams creates: add a team with namespace: %s." . .) -}}
{{- end -}}
{{- end -}}
{{- $kube := dig "hub" "config" "MlplatKubeHub" dict .Values.jupyterhub -}}
{{- $platform := printf "http://%s-platform:%d" (include "mlplat.fullname" .) (int .Values.platform.port) -}}
{{- $mlflow := printf "http://%s-mlflow:%d" (include "mlplat.fullname" .) (int .Values.mlflow.port) -}}
{{- if ne (get $kube "platform_url" | default "") $platform -}}
{{- fail (printf "jupyterhub.hub.config.MlplatKubeHub.platform_url is %q but the platform's Service is %s: set it to that URL." (get $kube "platform_url" | default "") $platform) -}}
{{- end -}}
{{- if and .Values.mlflow.enabled (ne (get $kube "mlflow_url" | default "") $mlflow) -}}
{{- fail (printf "jupyterhub.hub.config.MlplatKubeHub.mlflow_url is %q but MLflow's Service is %s: set it to that URL." (get $kube "mlflow_url" | default "") $mlflow) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A value as a Python literal: booleans as True/False, the rest as JSON. */}}
{{- define "mlplat.pythonValue" -}}
{{- if kindIs "bool" . -}}
{{- ternary "True" "False" . -}}
{{- else if kindIs "invalid" . -}}
None
{{- else -}}
{{- toJson . -}}
{{- end -}}
{{- end -}}
