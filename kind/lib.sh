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
  need_cmd helm "Install Helm >= $HELM_MIN_VERSION: https://helm.sh/docs/intro/install/ (or go install helm.sh/helm/v3/cmd/helm@v3.22.0)."
  local v
  v="$(helm version --template '{{.Version}}')"
  case "$v" in v3.*) ;; *) die "helm $v is not Helm 3; install Helm >= $HELM_MIN_VERSION: https://helm.sh/docs/intro/install/" ;; esac
  version_ge "$v" "$HELM_MIN_VERSION" || die "helm $v is older than $HELM_MIN_VERSION. Upgrade: https://helm.sh/docs/intro/install/"
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

# render FILE KEY=VALUE...: print FILE with __KEY__ replaced by VALUE.
render() {
  local file="$1"; shift
  local args=() kv
  for kv in "$@"; do
    args+=(-e "s|__${kv%%=*}__|${kv#*=}|g")
  done
  sed "${args[@]}" "$file"
}
