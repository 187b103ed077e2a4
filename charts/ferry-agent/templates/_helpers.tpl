{{/* Names */}}
{{- define "ferry-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ferry-agent.fullname" -}}
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

{{- define "ferry-agent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels on every object */}}
{{- define "ferry-agent.labels" -}}
helm.sh/chart: {{ include "ferry-agent.chart" . }}
{{ include "ferry-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ferry-agent.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: cluster-agent
app.kubernetes.io/part-of: ferry
{{- end }}

{{- define "ferry-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferry-agent.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "ferry-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferry-agent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferry-agent.credentialsSecret" -}}
{{- .Values.credentials.secretName | default (printf "%s-credentials" (include "ferry-agent.fullname" .)) }}
{{- end }}

{{- define "ferry-agent.bootstrapSecret" -}}
{{- .Values.existingBootstrapSecret | default (printf "%s-bootstrap" (include "ferry-agent.fullname" .)) }}
{{- end }}

{{/*
The agent's configuration keys: the environment variables cluster-agent/config.ts reads
(OVERRIDES). A rename on the agent's side is a change of this one list.
*/}}
{{- define "ferry-agent.configKeys" -}}
cluster: FERRY_CLUSTER
brokerAddress: FERRY_BROKER_ADDRESS
brokerCaFile: FERRY_BROKER_CA_FILE
natsUrls: FERRY_NATS_URLS
credentialsSecret: FERRY_CREDENTIALS_SECRET
credentialsNamespace: FERRY_NAMESPACE
bootstrapTokenFile: FERRY_BOOTSTRAP_TOKEN_FILE
inCluster: FERRY_IN_CLUSTER
kubeconfig: FERRY_KUBECONFIG
httpListen: FERRY_HTTP_LISTEN
logLevel: FERRY_LOG_LEVEL
kubevirtNamespace: FERRY_KUBEVIRT_NAMESPACE
{{- end }}

{{/* Files mounted into the agent container. */}}
{{- define "ferry-agent.paths" -}}
bootstrapToken: /etc/ferry/bootstrap/token
brokerCa: /etc/ferry/bootstrap/ca.crt
kubeconfig: /etc/ferry/kubeconfig/kubeconfig
{{- end }}

{{/* The container's environment: one entry per config key (values → agent). */}}
{{- define "ferry-agent.env" -}}
{{- $k := include "ferry-agent.configKeys" . | fromYaml }}
{{- $p := include "ferry-agent.paths" . | fromYaml }}
- name: {{ $k.cluster }}
  value: {{ .Values.cluster.name | quote }}
- name: {{ $k.brokerAddress }}
  value: {{ .Values.broker.address | quote }}
- name: {{ $k.brokerCaFile }}
  value: {{ $p.brokerCa | quote }}
{{- with .Values.nats.url }}
- name: {{ $k.natsUrls }}
  value: {{ . | quote }}
{{- end }}
- name: {{ $k.credentialsSecret }}
  value: {{ include "ferry-agent.credentialsSecret" . | quote }}
- name: {{ $k.credentialsNamespace }}
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: {{ $k.bootstrapTokenFile }}
  value: {{ $p.bootstrapToken | quote }}
{{- if eq .Values.kube.mode "kubeconfig" }}
- name: {{ $k.kubeconfig }}
  value: {{ $p.kubeconfig | quote }}
{{- else }}
- name: {{ $k.inCluster }}
  value: "true"
{{- end }}
- name: {{ $k.httpListen }}
  value: {{ printf "0.0.0.0:%d" (int .Values.http.port) | quote }}
- name: {{ $k.logLevel }}
  value: {{ .Values.logLevel | quote }}
- name: {{ $k.kubevirtNamespace }}
  value: {{ .Values.kubevirt.namespace | quote }}
{{- end }}

{{/*
RBAC: exactly the verbs the agent uses, no wildcard. README.md ("RBAC") says why each is needed;
charts.test.ts checks the README lists every rule rendered here.
*/}}
{{- define "ferry-agent.clusterRules" -}}
# KubeVirt CR: version, feature gates, synchronizationAddresses, migration limits,
# workloadUpdateMethods (inventory; watched for changes). list: its name is not fixed.
- apiGroups: [kubevirt.io]
  resources: [kubevirts]
  verbs: [get, list, watch]
# Source VM: read for describe/preflight, halted after success (patch runStrategy).
# Receiver VM (target): created with runStrategy WaitAsReceiver, deleted on cancel/failure.
# Same-cluster: one patch swaps the volumes (updateVolumesStrategy: Migration).
- apiGroups: [kubevirt.io]
  resources: [virtualmachines]
  verbs: [get, list, watch, create, patch, delete]
# VMIs: running state, phase WaitingForSync, migrationState, migratedVolumes (read only).
- apiGroups: [kubevirt.io]
  resources: [virtualmachineinstances]
  verbs: [get, list, watch]
# The receive and sendTo VMIMs: created per attempt, watched, deleted on cancel/retry;
# volume-update VMIMs are read by label; patch lifts KubeVirt's finalizers from a VMIM ferry deleted
# that KubeVirt will never finish (cluster-agent/core/status.ts heldVmim).
- apiGroups: [kubevirt.io]
  resources: [virtualmachineinstancemigrations]
  verbs: [get, list, watch, create, patch, delete]
# Blank target DataVolumes (and destinations of a storage migration): created, watched, deleted.
- apiGroups: [cdi.kubevirt.io]
  resources: [datavolumes]
  verbs: [get, list, watch, create, delete]
# Volume sizes, storage classes and binding of source and target claims (read only).
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch]
# Secrets and ConfigMaps a VM references: read on the source, copied to the target (create),
# found by label after a restart (list) and deleted on cancel/failure.
- apiGroups: [""]
  resources: [secrets, configmaps]
  verbs: [get, list, create, delete]
# Inventory and preflight: node count, architectures, schedulable nodes.
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
# Preflight: the target namespace exists.
- apiGroups: [""]
  resources: [namespaces]
  verbs: {{ if .Values.rbac.createNamespaces }}[get, list, watch, create]{{ else }}[get, list, watch]{{ end }}
# Inventory and the storage map: storage classes (read only).
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
# Free space per storage class for placement: CSIStorageCapacity objects, which CSI drivers
# publish in their own namespaces (read only, list + watch).
- apiGroups: [storage.k8s.io]
  resources: [csistoragecapacities]
  verbs: [list, watch]
# Inventory and the network map: Multus NetworkAttachmentDefinitions (read only).
- apiGroups: [k8s.cni.cncf.io]
  resources: [network-attachment-definitions]
  verbs: [get, list, watch]
{{- end }}

{{/* In the KubeVirt namespace only: the CA exchange. */}}
{{- define "ferry-agent.kubevirtRules" -}}
# This cluster's CA bundle (data.ca-bundle), reported to the broker and checked for the peers'
# CAs after an import; watched to notice a rotation. Never the Secret kubevirt-ca.
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [kubevirt-ca]
  verbs: [get, list, watch]
# The inbox virt-operator merges into kubevirt-ca: the peers' CA bundles are written here.
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [kubevirt-external-ca]
  verbs: [get, update, patch]
{{- end }}

{{/* In the KubeVirt namespace, when rbac.migrationProgress: live-migration progress from virt-handler. */}}
{{- define "ferry-agent.progressRules" -}}
# Which virt-handler pod (kubevirt.io=virt-handler) runs on a migrating VMI's node.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Its metrics (GET pods/https:<pod>:8443/proxy/metrics): KubeVirt exports a live migration's bytes
# only there. Grants GET to any port of any pod in this namespace, hence the switch.
- apiGroups: [""]
  resources: [pods/proxy]
  verbs: [get]
{{- end }}

{{/* In the agent's namespace only: its own credentials. */}}
{{- define "ferry-agent.credentialsRules" -}}
# The agent's certificate, key, CA, NATS JWT and seed: read at start, replaced on every renewal
# (its first create is covered by the cluster-wide rule: create cannot be limited by name).
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [{{ include "ferry-agent.credentialsSecret" . }}]
  verbs: [get, update]
{{- end }}
