#!/usr/bin/env bash
# Install what ovsphere needs on Debian 12, idempotently: the Debian packages
# (Go and govmomi for the vCenter simulator, OVS and OVN, tools the lab uses)
# and a Python venv in .venv with ovsphere installed in it. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  python3 python3-venv
  golang-go golang-github-vmware-govmomi-dev
  openvswitch-switch ovn-central ovn-host
  iproute2 iperf3 tcpdump ethtool iputils-ping openssl busybox
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install.sh: missing Debian packages ${missing[*]}; run as root so apt-get can install them" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install.sh: ovsphere needs Python 3.11 or newer ($python is older)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Reinstall only when the project's dependencies changed.
stamp=.venv/.ovsphere-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
