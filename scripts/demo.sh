#!/usr/bin/env bash
# The main job, end to end on one machine (as root): install what is needed,
# bring up the lab (an emulated vSphere datacenter: the extended vCenter
# simulator, 3 ESX hosts with their vDS proxy switches, one OVS VM per host,
# OVN central, a KVM host), run ovsphere's preflight against its vCenter,
# then `lab demo`: networks, VMs on three hosts attached through the manager,
# DHCP, pings across hosts, isolation, a KVM guest, a vMotion under ping.
# The lab stays up at the end; the last lines say how to reach it and how to
# take it down. Running it again is harmless.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s%N)
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step ovsphere lab up
step ovsphere --lab lab prepare
step ovsphere --lab lab check
step ovsphere --lab lab inventory
step ovsphere lab demo
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf '\nThe demo took %d.%03d s.\n' $((ms / 1000)) $((ms % 1000))
