#!/usr/bin/env bash
# The demo (README): provision the tools (same as the tests), then scripts/demo.py: a real
# kube-apiserver + etcd, Kafka and PostgreSQL, the example tenants, simulated OCPP traffic, and the
# operator reconciling them (applied for real with RISINGWAVE_DSN, otherwise in Plan mode).
#
#   scripts/demo.sh [--no-provision]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

provision=1
for arg in "$@"; do
  case $arg in
    --no-provision) provision=0 ;;
    *) echo "usage: $0 [--no-provision]" >&2; exit 2 ;;
  esac
done

step() { echo; echo "==> $*"; }

if ((provision)); then
  step "provision (python deps, postgresql, kafka, kube-apiserver + etcd, helm)"
  "$here/provision.sh" python postgres kafka k8s helm
fi

exec python3 "$here/demo.py"
