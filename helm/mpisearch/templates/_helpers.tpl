{{/* Chart name. */}}
{{- define "mpisearch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The longest MPIJob name that keeps every pod name (and hostname) the operator
derives from it a DNS-1035 label of at most 63 characters:
"<name>-launcher" and "<name>-worker-<workers-1>".
*/}}
{{- define "mpisearch.maxNameLength" -}}
{{- $digits := len (toString (sub (int .Values.workers) 1)) -}}
{{- sub 63 (max (len "-launcher") (add (len "-worker-") $digits)) -}}
{{- end -}}

{{/*
The MPIJob's name: fullnameOverride, else <release>-<chart> (just <release>
when it already contains the chart name), truncated as above. Fails unless it
is a DNS-1035 label (Service and pod hostnames must start with a letter).
*/}}
{{- define "mpisearch.fullname" -}}
{{- $name := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $name = .Values.fullnameOverride -}}
{{- else -}}
{{- $base := include "mpisearch.name" . -}}
{{- if contains $base .Release.Name -}}
{{- $name = .Release.Name -}}
{{- else -}}
{{- $name = printf "%s-%s" .Release.Name $base -}}
{{- end -}}
{{- end -}}
{{- $name = regexReplaceAll "-+$" ($name | trunc (include "mpisearch.maxNameLength" . | int)) "" -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "the MPIJob name %q (from the release name %q or fullnameOverride) is not a DNS-1035 label: use lower-case letters, digits and '-', starting with a letter" $name .Release.Name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "mpisearch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mpisearch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mpisearch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Standard labels, on every object the chart creates. */}}
{{- define "mpisearch.labels" -}}
helm.sh/chart: {{ include "mpisearch.chart" . }}
{{ include "mpisearch.selectorLabels" . }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mpisearch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}

{{- define "mpisearch.configMapName" -}}
{{- printf "%s-search" (include "mpisearch.fullname" .) -}}
{{- end -}}

{{/* Every rank: (workers + the launcher) x slots. */}}
{{- define "mpisearch.ranks" -}}
{{- mul (add (int .Values.workers) 1) (int .Values.slotsPerWorker) -}}
{{- end -}}

{{- define "mpisearch.outputDir" -}}
{{- default (printf "%s/results/%s" (trimSuffix "/" .Values.storage.mountPath) (include "mpisearch.fullname" .)) .Values.output.dir -}}
{{- end -}}

{{/* A word for /bin/sh, single-quoted. */}}
{{- define "mpisearch.shquote" -}}
{{- printf "'%s'" (replace "'" "'\\''" (toString .)) -}}
{{- end -}}

{{/* Requests and limits of one pod (the launcher or a worker). */}}
{{- define "mpisearch.resources" -}}
{{- if .Values.resources -}}
{{- toYaml .Values.resources -}}
{{- else -}}
{{- $cpu := mul (int .Values.slotsPerWorker) (int .Values.cpusPerSlot) -}}
{{- $memory := printf "%dMi" (mul (int .Values.slotsPerWorker) (int .Values.memoryPerSlotMi)) -}}
requests:
  cpu: {{ $cpu | quote }}
  memory: {{ $memory }}
limits:
  cpu: {{ $cpu | quote }}
  memory: {{ $memory }}
{{- end -}}
{{- end -}}

{{/* Environment of the launcher and the workers. */}}
{{- define "mpisearch.env" -}}
- name: OMP_NUM_THREADS
  value: {{ .Values.cpusPerSlot | toString | quote }}
- name: OPENBLAS_NUM_THREADS
  value: {{ .Values.cpusPerSlot | toString | quote }}
- name: MKL_NUM_THREADS
  value: {{ .Values.cpusPerSlot | toString | quote }}
- name: PYTHONUNBUFFERED
  value: "1"
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The launcher's command (/bin/sh -c). It reads its paths from the environment
(MPI_HOSTFILE, MPISEARCH_CONFIG, MPISEARCH_OUT, MPISEARCH_DATA, SSHD_CONFIG),
so tests can run this very script with local paths.
*/}}
{{- define "mpisearch.launcherScript" -}}
{{- $ranks := include "mpisearch.ranks" . -}}
{{- $threads := .Values.cpusPerSlot | toString -}}
set -eu
# {{ $ranks }} MPI ranks = ({{ .Values.workers }} workers + the launcher) x {{ .Values.slotsPerWorker }} slots; rank 0 runs on the launcher.
hostfile="$MPI_HOSTFILE"
out="$MPISEARCH_OUT"
# Wait until every host in the operator's hostfile resolves.
for host in $(sed -e 's/[: ].*//' "$hostfile"); do
  tries=0
  until getent ahosts "$host" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 120 ]; then
      echo "mpisearch: cannot resolve $host (from $hostfile) after 120 s" >&2
      exit 1
    fi
    sleep 1
  done
done
# The launcher is in the hostfile too (runLauncherAsWorker): serve ssh in case
# the MPI launcher does not recognise its own name and connects to itself.
if [ -n "${SSHD_CONFIG:-}" ] && [ -f "$SSHD_CONFIG" ]; then
  /usr/sbin/sshd -f "$SSHD_CONFIG" -o PidFile=/tmp/sshd.pid || echo "mpisearch: warning: could not start sshd on the launcher" >&2
fi
# A restarted launcher (backoffLimit) resumes the search from its journal.
resume=""
if [ -f "$out/journal.jsonl" ]; then
  resume="--resume"
  echo "mpisearch: resuming from $out/journal.jsonl"
fi
{{- if eq .Values.mpiImplementation "OpenMPI" }}
exec mpirun --hostfile "$hostfile" -n {{ $ranks }} \
  -x OMP_NUM_THREADS={{ $threads }} -x OPENBLAS_NUM_THREADS={{ $threads }} -x MKL_NUM_THREADS={{ $threads }} -x PYTHONUNBUFFERED=1 \
{{- else }}
set --
{{- with .Values.ssh.wrapper }}
# A worker host that goes silent ends the job instead of hanging it (values: ssh.wrapper).
if [ -x {{ include "mpisearch.shquote" . }} ]; then
  set -- -launcher ssh -launcher-exec {{ include "mpisearch.shquote" . }}
  export MPIEXEC_SSH_ALIVE={{ $.Values.ssh.keepaliveSeconds }}
else
  echo "mpisearch: warning: "{{ include "mpisearch.shquote" . }}" is not in the image: plain ssh, a lost host may hang the job" >&2
fi
{{- end }}
exec mpiexec "$@" -f "$hostfile" -n {{ $ranks }} \
  -genv OMP_NUM_THREADS {{ $threads }} -genv OPENBLAS_NUM_THREADS {{ $threads }} -genv MKL_NUM_THREADS {{ $threads }} -genv PYTHONUNBUFFERED 1 \
{{- end }}
  mpisearch run "$MPISEARCH_CONFIG" --out "$out" $resume
{{- if include "mpisearch.dataPath" . }} \
  --set "data.path=$MPISEARCH_DATA"
{{- end }}
{{- range .Values.extraArgs }} {{ include "mpisearch.shquote" . }}{{ end }}
{{- end -}}

{{/* The volume with the data and the results: a PVC, or an emptyDir for the demo. */}}
{{- define "mpisearch.workVolume" -}}
- name: work
{{- if .Values.storage.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.storage.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{- define "mpisearch.workVolumeMount" -}}
- name: work
  mountPath: {{ .Values.storage.mountPath }}
{{- with .Values.storage.subPath }}
  subPath: {{ . }}
{{- end }}
{{- end -}}

{{/* A memory-backed /dev/shm (the container runtime's default is 64 MiB). */}}
{{/* A writable /tmp (the root filesystem is read-only): Python's and MPICH's temporary
files, sshd's pid file. */}}
{{- define "mpisearch.tmpVolume" -}}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "mpisearch.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "mpisearch.shmVolume" -}}
- name: dshm
  emptyDir:
    medium: Memory
{{- with .Values.sharedMemory.sizeLimit }}
    sizeLimit: {{ . }}
{{- end }}
{{- end -}}

{{/* Demo mode: no config given (config unset or null). */}}
{{- define "mpisearch.demo" -}}
{{- if kindIs "invalid" .Values.config }}true{{ end -}}
{{- end -}}

{{/* The search config: the user's (checked to parse as TOML), or the demo's. */}}
{{- define "mpisearch.config" -}}
{{- if include "mpisearch.demo" . -}}
{{- .Files.Get "files/demo.toml" -}}
{{- else -}}
{{- $parsed := fromToml (toString .Values.config) -}}
{{- if hasKey $parsed "Error" -}}
{{- fail (printf "config is not valid TOML: %s" $parsed.Error) -}}
{{- end -}}
{{- .Values.config -}}
{{- end -}}
{{- end -}}

{{/* data.path, or in the demo <mountPath>/data/digits.h5. */}}
{{- define "mpisearch.dataPath" -}}
{{- if .Values.data.path -}}
{{- .Values.data.path -}}
{{- else if include "mpisearch.demo" . -}}
{{- printf "%s/data/digits.h5" (trimSuffix "/" .Values.storage.mountPath) -}}
{{- end -}}
{{- end -}}

{{/* data.make, or in the demo "digits". */}}
{{- define "mpisearch.dataMake" -}}
{{- if .Values.data.make -}}
{{- .Values.data.make -}}
{{- else if include "mpisearch.demo" . -}}
digits
{{- end -}}
{{- end -}}
