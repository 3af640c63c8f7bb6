#!/usr/bin/env bash
# apt-install.sh WHO PACKAGE...: installs Debian packages for kmt's install
# scripts (install-deps.sh, install-node-deps.sh), as root or through sudo,
# without starting any packaged daemon: a policy-rc.d that exits 101 tells
# Debian's maintainer scripts not to start services (tests and the node
# harness run their own on loopback; nothing may be left running). An
# existing policy-rc.d is kept. WHO prefixes the messages.
set -euo pipefail
who=$1
shift
[ $# -gt 0 ] || exit 0
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
  command -v sudo >/dev/null 2>&1 || { echo "$who: need root (or sudo) to apt-get install $*" >&2; exit 3; }
else
  SUDO=
fi
echo "$who: installing $* from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  made_policy=1
fi
trap '[ -n "$made_policy" ] && $SUDO rm -f "$policy"' EXIT
# --no-install-recommends keeps packages such as prometheus from pulling in extras.
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
echo "$who: done"
