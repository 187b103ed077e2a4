{{/* Names */}}
{{- define "ferry-broker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ferry-broker.fullname" -}}
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

{{- define "ferry-broker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels on every object */}}
{{- define "ferry-broker.labels" -}}
helm.sh/chart: {{ include "ferry-broker.chart" . }}
{{ include "ferry-broker.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ferry-broker.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: broker
app.kubernetes.io/part-of: ferry
{{- end }}

{{- define "ferry-broker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry-broker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferry-broker.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "ferry-broker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferry-broker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Where the mounted Secrets appear in the container (the config file names these paths). */}}
{{- define "ferry-broker.paths" -}}
config: /etc/ferry/config/broker.yaml
caCert: /etc/ferry/ca/tls.crt
caKey: /etc/ferry/ca/tls.key
authority: /etc/ferry/bus/authority.json
natsCert: /etc/ferry/nats/tls.crt
natsKey: /etc/ferry/nats/tls.key
natsUserJwt: /etc/ferry/nats-user/user.jwt
natsUserSeed: /etc/ferry/nats-user/user.nk
grpcCert: /etc/ferry/grpc/tls.crt
grpcKey: /etc/ferry/grpc/tls.key
{{- end }}

{{/* The address given to agents and ferryctl: the value, else the Service's in-cluster name. */}}
{{- define "ferry-broker.advertiseAddress" -}}
{{- if .Values.grpc.advertiseAddress }}
{{- .Values.grpc.advertiseAddress }}
{{- else }}
{{- printf "%s.%s.svc:%d" (include "ferry-broker.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}
{{- end }}

{{/*
The broker's config file (broker/config.ts BrokerConfig). The identity is not here: each pod
passes its own name in FERRY_BROKER_IDENTITY.
*/}}
{{- define "ferry-broker.config" -}}
{{- $p := include "ferry-broker.paths" . | fromYaml }}
{{- $nats := dict "urls" .Values.nats.urls "caFile" $p.caCert "certFile" $p.natsCert "keyFile" $p.natsKey "kvReplicas" .Values.nats.kvReplicas "eventsMaxAgeDays" .Values.nats.eventsMaxAgeDays }}
{{- if .Values.nats.user.enabled }}
{{- $_ := set $nats "userJwtFile" $p.natsUserJwt }}
{{- $_ := set $nats "userSeedFile" $p.natsUserSeed }}
{{- end }}
{{- $agents := dict "heartbeatGraceSeconds" .Values.agents.heartbeatGraceSeconds "certificateValidityDays" .Values.agents.certificateValidityDays }}
{{- with .Values.agents.natsUrls }}
{{- $_ := set $agents "natsUrls" . }}
{{- end }}
{{- $leader := dict "leaseSeconds" .Values.leader.leaseSeconds }}
{{- if not (kindIs "invalid" .Values.leader.renewSeconds) }}
{{- $_ := set $leader "renewSeconds" .Values.leader.renewSeconds }}
{{- end }}
{{- $config := dict
  "logLevel" .Values.logLevel
  "nats" $nats
  "busAuthorityFile" $p.authority
  "ca" (dict "certFile" $p.caCert "keyFile" $p.caKey)
  "grpc" (dict "listen" (printf "0.0.0.0:%d" (int .Values.grpc.port)) "certFile" $p.grpcCert "keyFile" $p.grpcKey "advertiseAddress" (include "ferry-broker.advertiseAddress" .))
  "http" (dict "listen" (printf "0.0.0.0:%d" (int .Values.http.port)))
  "agents" $agents
  "leader" $leader
  "enrollment" .Values.enrollment
}}
{{- toYaml $config }}
{{- end }}

{{/*
Secrets the chart creates from values: a list of {name, data} (data as key → string). Used by
secrets.yaml and by the pod template's checksum, so a changed certificate rolls the pods.
*/}}
{{- define "ferry-broker.createdSecrets" -}}
{{- $list := list }}
{{- with .Values.ca }}{{ if .create }}{{ $list = append $list (dict "name" .secretName "type" "kubernetes.io/tls" "data" (dict "tls.crt" .cert "tls.key" .key)) }}{{ end }}{{ end }}
{{- with .Values.busAuthority }}{{ if .create }}{{ $list = append $list (dict "name" .secretName "type" "Opaque" "data" (dict "authority.json" .json)) }}{{ end }}{{ end }}
{{- with .Values.nats.tls }}{{ if .create }}{{ $list = append $list (dict "name" .secretName "type" "kubernetes.io/tls" "data" (dict "tls.crt" .cert "tls.key" .key)) }}{{ end }}{{ end }}
{{- if .Values.nats.user.enabled }}{{ with .Values.nats.user }}{{ if .create }}{{ $list = append $list (dict "name" .secretName "type" "Opaque" "data" (dict "user.jwt" .jwt "user.nk" .seed)) }}{{ end }}{{ end }}{{ end }}
{{- with .Values.grpc.tls }}{{ if .create }}{{ $list = append $list (dict "name" .secretName "type" "kubernetes.io/tls" "data" (dict "tls.crt" .cert "tls.key" .key)) }}{{ end }}{{ end }}
{{- toYaml (dict "secrets" $list) }}
{{- end }}
