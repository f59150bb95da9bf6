{{/* Names, labels and the settings several templates share. */}}

{{- define "tesk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tesk.fullname" -}}
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

{{- define "tesk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tesk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tesk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tesk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tesk
{{- end }}

{{- define "tesk.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The taskmaster and filer run from the API's image unless taskmaster.image says otherwise. */}}
{{- define "tesk.taskmasterImage" -}}
{{- $tm := .Values.taskmaster.image }}
{{- printf "%s:%s" (default .Values.image.repository $tm.repository) (default (default .Chart.AppVersion .Values.image.tag) $tm.tag) }}
{{- end }}

{{- define "tesk.taskNamespace" -}}
{{- default .Release.Namespace .Values.tasks.namespace }}
{{- end }}

{{/* The label value that marks this release's tasks (two releases may share a task namespace). */}}
{{- define "tesk.taskInstance" -}}
{{- default .Release.Name .Values.tasks.instance }}
{{- end }}

{{/*
Where the API pod finds the users file (mode basic): the whole Secret is mounted as a directory, not with
subPath, so that the kubelet's updates of the Secret reach the file and TESK re-reads it.
*/}}
{{- define "tesk.usersDir" -}}
/etc/tesk-auth
{{- end }}

{{- define "tesk.usersFile" -}}
{{- printf "%s/users" (include "tesk.usersDir" .) }}
{{- end }}

{{- define "tesk.serviceAccountName.api" -}}
{{- $sa := .Values.serviceAccount.api }}
{{- if $sa.create }}{{ default (printf "%s-api" (include "tesk.fullname" .)) $sa.name }}{{ else }}{{ $sa.name }}{{ end }}
{{- end }}

{{- define "tesk.serviceAccountName.taskmaster" -}}
{{- $sa := .Values.serviceAccount.taskmaster }}
{{- if $sa.create }}{{ default (printf "%s-taskmaster" (include "tesk.fullname" .)) $sa.name }}{{ else }}{{ $sa.name }}{{ end }}
{{- end }}

{{- define "tesk.serviceAccountName.executor" -}}
{{- $sa := .Values.serviceAccount.executor }}
{{- if $sa.create }}{{ default (printf "%s-executor" (include "tesk.fullname" .)) $sa.name }}{{ else }}{{ $sa.name }}{{ end }}
{{- end }}

{{- define "tesk.usesSqliteVolume" -}}
{{- if and (eq .Values.database.type "sqlite") .Values.persistence.enabled }}true{{ end }}
{{- end }}

{{/*
Combinations values.schema.json cannot explain well; each failure says what to change.
*/}}
{{- define "tesk.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (ne .Values.database.type "postgresql") }}
{{- fail (printf "replicaCount is %d, but more than one replica needs PostgreSQL: SQLite is one file on a ReadWriteOnce volume that only one pod may write. Set database.type=postgresql and database.existingSecret (a Secret holding the database URL), or set replicaCount=1." (int .Values.replicaCount)) }}
{{- end }}
{{- if and (eq .Values.database.type "postgresql") (not .Values.database.existingSecret) }}
{{- fail "database.type is postgresql, but database.existingSecret is empty: name a Secret whose key database.existingSecretKey (default \"url\") holds the URL, e.g. postgresql+psycopg://tesk:PASSWORD@postgres:5432/tesk" }}
{{- end }}
{{- range $who := list "api" "taskmaster" "executor" }}
{{- $sa := index $.Values.serviceAccount $who }}
{{- if and (not $sa.create) (not $sa.name) }}
{{- fail (printf "serviceAccount.%s.create is false, so serviceAccount.%s.name must name an existing ServiceAccount" $who $who) }}
{{- end }}
{{- end }}
{{- $api := include "tesk.serviceAccountName.api" . }}
{{- $tm := include "tesk.serviceAccountName.taskmaster" . }}
{{- $ex := include "tesk.serviceAccountName.executor" . }}
{{- if or (eq $api $tm) (eq $tm $ex) (eq $api $ex) }}
{{- fail (printf "the API (%s), taskmaster (%s) and executor (%s) ServiceAccounts must be three different accounts: each gets different permissions" $api $tm $ex) }}
{{- end }}
{{- end }}
