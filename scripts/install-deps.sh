#!/usr/bin/env bash
# Installs the third-party programs kmt's tests use as real peers, from
# Debian's packages, when they are missing: kcat (independent producer and
# consumer, pipe mirror), prometheus (differential PromQL check) and
# etcd-server (behind the real kube-apiserver of the Kubernetes tests) and
# chromium (the headless browser that opens report.html in the report test).
# Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || need+=(etcd-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: kcat, prometheus, etcd and chromium are present"
  exit 0
fi
exec "$(dirname "$0")/apt-install.sh" install-deps "${need[@]}"
