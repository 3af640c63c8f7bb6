#!/usr/bin/env bash
# Installs what the single-machine Kubernetes node (internal/testenv/node,
# `make k8s-node-up`, `make test-node`) needs from Debian's packages, when
# missing: containerd (1.6, the CRI runtime), runc (the OCI runtime under
# it), containernetworking-plugins (the bridge, host-local and loopback CNI
# plugins in /usr/lib/cni) and iproute2. The Kubernetes binaries are built
# from the Go module proxy by the harness itself and cached in ~/.cache/kmt.
# Safe to run again: it installs only what is missing, and it never starts the
# packaged containerd service (the harness runs its own on a private socket).
set -euo pipefail

need=()
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v ip >/dev/null 2>&1 || need+=(iproute2)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-node-deps: containerd, runc, CNI plugins and iproute2 are present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
  command -v sudo >/dev/null 2>&1 || { echo "install-node-deps: need root (or sudo) to apt-get install ${need[*]}" >&2; exit 3; }
else
  SUDO=
fi
echo "install-node-deps: installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d exit 101 tells Debian's maintainer scripts not to start the
# packaged containerd: nothing may be left running (an existing policy-rc.d
# is kept).
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  made_policy=1
fi
trap '[ -n "$made_policy" ] && $SUDO rm -f "$policy"' EXIT
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install-node-deps: done"
