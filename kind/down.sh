#!/usr/bin/env bash
# make kind-down: delete both kind clusters (everything in them goes too).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_docker
check_kind
for c in "${CLUSTERS[@]}"; do
  if kind get clusters 2>/dev/null | grep -qx "kmt-$c"; then
    log "deleting kind cluster kmt-$c"
    kind delete cluster --name "kmt-$c"
  else
    log "kind cluster kmt-$c does not exist; nothing to do"
  fi
done
