#!/usr/bin/env bash
# The main job, end to end on one machine (as root): install, start the
# extended vCenter simulator, prepare the isolated port group, deploy one OVS
# VM per host and two VMs onto it, prepare again (shapes their ports), run the
# preflight check and show the inventory. The simulator stops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s%N)
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
log=$(mktemp /tmp/ovsphere-demo-sim.XXXXXX.log)
OVSPHERE_SIM_PASSWORD=$password ovsphere vcenter sim --port "$port" --hosts 3 --vms 1 >"$log" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  grep -q "vCenter simulator at" "$log" && break
  kill -0 "$sim" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
grep -q "vCenter simulator at" "$log" || { echo "the simulator did not start:"; cat "$log"; exit 1; }
export OVSPHERE_VCENTER="https://ovsphere:$password@127.0.0.1:$port/sdk" OVSPHERE_INSECURE=1 OVSPHERE_DVS=DVS0

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step ovsphere prepare
step ovsphere lab seed --vms 2
step ovsphere prepare
step ovsphere check
step ovsphere inventory
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf '\nThe demo took %d.%03d s. The simulator (pid %s) stops now.\n' $((ms / 1000)) $((ms % 1000)) "$sim"
