#!/usr/bin/env bash
# End-to-end demo on a laptop or CI box, no Docker: provision the tools (same as CI), start a
# real kube-apiserver + etcd, Kafka and PostgreSQL (the test bed, scripts/testbed.py), install
# the CRD, apply examples/ into namespace `tenants`, produce simulated OCPP traffic if the
# simulator is available, show the resources like `kubectl get cha`, then tear everything down.
#
#   scripts/demo.sh [--no-provision] [--keep]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

provision=1 keep=()
for arg in "$@"; do
  case $arg in
    --no-provision) provision=0 ;;
    --keep) keep=(--keep) ;;
    *) echo "usage: $0 [--no-provision] [--keep]" >&2; exit 2 ;;
  esac
done

step() { echo; echo "==> $*"; }

if ((provision)); then
  step "provision (python deps, postgresql, kafka, kube-apiserver + etcd, helm)"
  "$here/provision.sh" python postgres kafka k8s helm
fi

namespace=tenants
work=$(mktemp -d)
env_file="$work/testbed.env"
testbed_pid=
cleanup() {
  local rc=$?
  if [[ -n $testbed_pid ]] && kill -0 "$testbed_pid" 2>/dev/null; then
    step "tear down"
    kill -TERM "$testbed_pid"
    wait "$testbed_pid" || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "start the test bed and apply examples/ into namespace $namespace"
python3 "$here/testbed.py" up --namespace "$namespace" --env-file "$env_file" "${keep[@]}" \
  --apply examples/acme.yaml examples/voltbay.yaml &
testbed_pid=$!
# Readiness: the env file appears (atomically) once every service answers.
t0=$SECONDS
until [[ -f $env_file ]]; do
  if ! kill -0 "$testbed_pid" 2>/dev/null; then
    wait "$testbed_pid" || true
    testbed_pid=
    echo "error: the test bed failed to start (see its output above)" >&2
    exit 1
  fi
  if ((SECONDS - t0 > 300)); then echo "error: test bed not ready after 300s" >&2; exit 1; fi
  sleep 0.2
done
# shellcheck disable=SC1090
. "$env_file"
export KUBECONFIG KAFKA_BOOTSTRAP_SERVERS POSTGRES_DSN ALERTS_DSN
echo "KUBECONFIG=$KUBECONFIG"
echo "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS"

# --- operator: wired in here later (e.g. `charging-analytics operator --standalone -n $namespace`) ---

if command -v charging-analytics >/dev/null && charging-analytics simulate --help >/dev/null 2>&1; then
  step "simulate OCPP traffic into Kafka (topic ocpp.acme.events)"
  charging-analytics simulate --bootstrap-servers "$KAFKA_BOOTSTRAP_SERVERS" \
    --topic ocpp.acme.events --create-topic --partitions 3 --rate 0 --speedup 0 --max-events 2000
else
  step "simulate: skipped (charging-analytics simulate is not available yet)"
fi

step "kubectl get cha -n $namespace -o wide (via the Python client)"
python3 "$here/testbed.py" get --namespace "$namespace" --kubeconfig "$KUBECONFIG"
