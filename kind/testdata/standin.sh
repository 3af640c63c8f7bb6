#!/usr/bin/env bash
# Stand-in for kind, docker, helm and kubectl in kind_test.go (symlinked
# under each name): records every call in $STANDIN_STATE/trace, answers
# the queries the scripts make, and refuses what the real tools refuse when
# it matters for the order of steps (an object or a Helm release into a
# namespace that does not exist yet). No cluster is touched.
set -euo pipefail
st="$STANDIN_STATE"
tool="$(basename "$0")"
printf '%s %s\n' "$tool" "$*" >> "$st/trace"

has_ns() { grep -qx "$1" "$st/namespaces" 2>/dev/null; }
need_ns() { has_ns "$1" || { echo "Error from server (NotFound): namespaces \"$1\" not found" >&2; exit 1; }; }
arg_after() { # flag args...: the value after flag
  local f="$1"; shift
  while [ $# -gt 0 ]; do
    if [ "$1" = "$f" ]; then echo "$2"; return; fi
    shift
  done
}

case "$tool" in
kind)
  case "$1 ${2:-}" in
    "version ") echo "kind v0.33.0 go1.26 linux/amd64" ;;
    "get clusters") cat "$st/clusters" 2>/dev/null || true ;;
    "create cluster") grep -o 'name: kmt-[a-z]*' "$(arg_after --config "$@")" | sed 's/name: //' >> "$st/clusters" ;;
  esac ;;
docker)
  case "$1" in
    inspect) case "${*: -1}" in
      kmt-source-control-plane) echo "$STANDIN_SOURCE_IP" ;;
      kmt-target-control-plane) echo "$STANDIN_TARGET_IP" ;;
    esac ;;
  esac ;;
helm)
  case " $* " in
    *" version "*) echo "${STANDIN_HELM_VERSION:-v3.14.0}" ;;
    *" install "*|*" upgrade "*)
      ns="$(arg_after --namespace "$@")"
      need_ns "$ns"
      watched="$(printf '%s\n' "$@" | sed -n 's/^watchNamespaces={\(.*\)}$/\1/p')"
      for w in $(echo "$watched" | tr ',' ' '); do need_ns "$w"; done ;;
  esac ;;
kubectl)
  args=" $* "
  case "$args" in
    *" version --client "*) echo '{"clientVersion": {"gitVersion": "v1.34.1"}}' ;;
    *" create namespace "*" --dry-run=client "*)
      n="$(printf '%s\n' "$@" | sed -n '/^namespace$/{n;p;}')"
      printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$n" ;;
    *" apply -f - "*)
      doc="$(cat)"
      printf '%s\n---\n' "$doc" >> "$st/applied"
      if printf '%s\n' "$doc" | grep -q '^kind: Namespace$'; then
        printf '%s\n' "$doc" | sed -n 's/^  name: //p' >> "$st/namespaces"
      fi
      for n in $(printf '%s\n' "$doc" | sed -n 's/^  namespace: //p' | sort -u); do need_ns "$n"; done ;;
    *" apply -f "*)
      f="$(arg_after -f "$@")"
      for n in $(sed -n 's/^  namespace: //p' "$f" | sort -u); do need_ns "$n"; done ;;
    *" get job/"*"activeDeadlineSeconds"*) echo 900 ;;
    *" get job/"*"conditions"*) echo "Complete " ;;
    *" get configmaps -l "*) echo "configmap/kmt-run-x"; echo "configmap/kmt-report-x" ;;
    *" get configmap/kmt-report-x "*"report"*) echo '{"verdict": "pass"}' ;;
    *" get configmap/kmt-report-x "*"summary"*) echo "summary" ;;
  esac ;;
esac
