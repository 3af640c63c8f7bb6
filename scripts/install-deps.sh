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
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root (or sudo) to apt-get install ${need[*]}" >&2; exit 3; }
else
  SUDO=
fi
echo "install-deps: installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d exit 101 tells Debian's maintainer scripts not to start the
# packaged daemons: tests start their own on loopback, and nothing may be left
# running (an existing policy-rc.d is kept).
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  made_policy=1
fi
trap '[ -n "$made_policy" ] && $SUDO rm -f "$policy"' EXIT
# --no-install-recommends keeps prometheus from pulling in extras.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install-deps: done"
