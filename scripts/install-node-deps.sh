#!/usr/bin/env bash
# Installs what the single-machine Kubernetes node (internal/env/testenv/node,
# `make k8s-node-up`, `make test-node`) needs from Debian's packages, when
# missing: containerd (1.6, the CRI runtime), runc (the OCI runtime under
# it), containernetworking-plugins (the bridge, host-local and loopback CNI
# plugins in /usr/lib/cni), iproute2, and gcc with libc6-dev (Chaos Mesh's
# chaos-daemon has C code in it: cgo, linked statically against libc.a).
# The Kubernetes binaries are built from the Go module proxy by the harness
# itself and cached in ~/.cache/kmt.
# Safe to run again: it installs only what is missing, and it never starts the
# packaged containerd service (the harness runs its own on a private socket).
set -euo pipefail

need=()
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
dpkg-query -W -f='${Status}' libc6-dev 2>/dev/null | grep -q "ok installed" || need+=(libc6-dev)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-node-deps: containerd, runc, CNI plugins, iproute2, gcc and libc6-dev are present"
  exit 0
fi
exec "$(dirname "$0")/apt-install.sh" install-node-deps "${need[@]}"
