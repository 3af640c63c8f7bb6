#!/usr/bin/env bash
# Shared helpers of the kind scripts: pinned versions, prerequisite checks
# that say exactly what is missing and how to get it, and small utilities.
set -euo pipefail

KIND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$KIND_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$KIND_DIR/versions.env"

CLUSTERS=(source target)
ctx() { echo "kind-kmt-$1"; }

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# version_ge A B: true when version A >= B (leading v ignored).
version_ge() {
  [ "$(printf '%s\n%s\n' "${2#v}" "${1#v}" | sort -V | head -n1)" = "${2#v}" ]
}

need_cmd() { # name, how to install
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (or not on PATH). $2"
}

check_docker() {
  need_cmd docker "Install Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/ (podman works too: export KIND_EXPERIMENTAL_PROVIDER=podman)."
  docker info >/dev/null 2>&1 || die "docker is installed but the daemon does not answer ('docker info' failed). Start Docker (systemctl start docker, or open Docker Desktop) and make sure your user may use it."
}

check_kind() {
  need_cmd kind "Install kind $KIND_VERSION: go install sigs.k8s.io/kind@$KIND_VERSION (or https://kind.sigs.k8s.io/docs/user/quick-start/#installation)."
  local v
  v="$(kind version | awk '{print $2}')"
  version_ge "$v" "$KIND_VERSION" || die "kind $v is older than the pinned $KIND_VERSION (its node image $KIND_NODE_IMAGE needs it). Upgrade: go install sigs.k8s.io/kind@$KIND_VERSION"
}

check_kubectl() {
  need_cmd kubectl "Install kubectl >= $KUBECTL_MIN_VERSION: https://kubernetes.io/docs/tasks/tools/"
  local v
  v="$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\(v[0-9.]*\).*/\1/p' | head -n1)"
  [ -n "$v" ] || die "could not read the kubectl version ('kubectl version --client -o json')."
  version_ge "$v" "$KUBECTL_MIN_VERSION" || die "kubectl $v is older than $KUBECTL_MIN_VERSION. Upgrade: https://kubernetes.io/docs/tasks/tools/"
}

check_helm() {
  need_cmd helm "Install Helm >= $HELM_MIN_VERSION (Helm 3 or 4): https://helm.sh/docs/intro/install/"
  local v
  v="$(helm version --template '{{.Version}}')"
  case "$v" in
    v3.*) version_ge "$v" "$HELM_MIN_VERSION" || die "helm $v is older than $HELM_MIN_VERSION. Upgrade: https://helm.sh/docs/intro/install/" ;;
    v4.*) ;;
    *) die "helm $v is neither Helm 3 (>= $HELM_MIN_VERSION) nor Helm 4; install a current Helm: https://helm.sh/docs/intro/install/" ;;
  esac
}

check_all() { check_docker; check_kind; check_kubectl; check_helm; }

check_cluster() { # name
  kind get clusters 2>/dev/null | grep -qx "kmt-$1" || die "kind cluster kmt-$1 does not exist. Create both with: make kind-up"
}

# node_ip NAME: the cluster's control-plane container IP on kind's docker network.
node_ip() {
  local ip
  ip="$(docker inspect -f '{{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}}{{end}}' "kmt-$1-control-plane")"
  [ -n "$ip" ] || die "container kmt-$1-control-plane has no address on the docker network 'kind' (docker network inspect kind)."
  echo "$ip"
}

# ensure_namespace CONTEXT NAME: create the namespace unless it exists
# (before anything that lands in it: a Helm chart's RoleBindings, a CR).
ensure_namespace() {
  kubectl --context "$1" create namespace "$2" --dry-run=client -o yaml | kubectl --context "$1" apply -f - >/dev/null
}

# render FILE KEY=VALUE...: print FILE with every __KEY__ replaced by VALUE
# taken literally: no character of VALUE is special (the default MirrorMaker
# 2 topic pattern `orders|kmt-.*` holds sed's delimiter and regex
# metacharacters). Fails when a placeholder is left unfilled. awk reads the
# values from its environment (ENVIRON), which, unlike -v, does not
# interpret backslashes; portable to macOS's awk and bash 3.2.
render() {
  local file="$1"; shift
  local out
  out="$(
    names=""
    for kv in "$@"; do
      export "KMT_RENDER_${kv%%=*}=${kv#*=}"
      names="$names ${kv%%=*}"
    done
    awk -v names="$names" '
      BEGIN { n = split(names, key, " ") }
      {
        line = $0
        for (i = 1; i <= n; i++) {
          ph = "__" key[i] "__"; val = ENVIRON["KMT_RENDER_" key[i]]; done = ""
          while ((p = index(line, ph)) > 0) {
            done = done substr(line, 1, p - 1) val
            line = substr(line, p + length(ph))
          }
          line = done line
        }
        print line
      }' "$file"
  )" || die "rendering $file failed"
  if printf '%s\n' "$out" | grep -v '^ *#' | grep -q '__[A-Z_]*__'; then
    die "rendering $file left a placeholder unfilled: $(printf '%s\n' "$out" | grep -v '^ *#' | grep -o '__[A-Z_]*__' | head -n1)"
  fi
  printf '%s\n' "$out"
}

# wait_job CONTEXT NAMESPACE JOB TIMEOUT_SECONDS: poll until the Job is
# Complete or Failed (portable: no `wait -n`, which bash 3.2 lacks). Prints
# the final condition; returns 1 on timeout.
wait_job() {
  local waited=0 state
  while [ "$waited" -lt "$4" ]; do
    state="$(kubectl --context "$1" -n "$2" get "job/$3" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}' 2>/dev/null || true)"
    case " $state " in
      *" Complete "*) echo Complete; return 0 ;;
      *" Failed "*) echo Failed; return 0 ;;
    esac
    sleep 10
    waited=$((waited + 10))
  done
  echo Timeout
  return 1
}
