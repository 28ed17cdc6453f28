#!/usr/bin/env bash
# Provision the tools the tests and the demo need, from the package registries only
# (Go module proxy, Maven Central, Debian, PyPI). Idempotent: every tool is built or
# fetched once into $CHARGING_TOOLS_DIR (outside the repository) and reused after that.
#
#   scripts/provision.sh [all|k8s|helm|kafka|postgres|python]...
#
# Prints the tool directory layout to use: $CHARGING_TOOLS_DIR/{k8s-<ver>,helm-<ver>,kafka-<ver>}.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
TOOLS=${CHARGING_TOOLS_DIR:-$HOME/.cache/charging-analytics/tools}
mkdir -p "$TOOLS"

stage() {  # stage NAME CMD...: run a stage and print its wall time
  local name=$1; shift
  local t0=$SECONDS
  echo "==> provision $name"
  "$@"
  echo "<== provision $name: $((SECONDS - t0))s"
}

k8s() {
  local out="$TOOLS/k8s-$KUBERNETES_VERSION"
  if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
    echo "kube-apiserver and etcd $KUBERNETES_VERSION cached in $out"; return
  fi
  local staging="v0.${KUBERNETES_VERSION#v1.}"
  local work; work=$(mktemp -d)
  mkdir -p "$out"
  (
    cd "$work"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    printf 'module local/k8sbins\n\ngo 1.26\n' > go.mod
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    # k/k requires every staging module at v0.0.0; point each at its published v0.Y.Z.
    local staged m
    mapfile -t staged < <(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$gomod")
    for m in "${staged[@]}"; do
      go mod edit -replace="$m=$m@$staging"
    done
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION"
    local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
    local ldf="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf="$ldf -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
      ldf="$ldf -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    go build -trimpath -ldflags "$ldf" -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    # etcd: the release this Kubernetes version pins in its own module graph.
    local etcd_version
    etcd_version=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
    go get "go.etcd.io/etcd/server/v3@$etcd_version"
    go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
    echo "$etcd_version" > "$out/etcd.version"
    mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
    mv "$out/etcd.tmp" "$out/etcd"
  )
  rm -rf "$work"
  echo "built kube-apiserver $KUBERNETES_VERSION and etcd $(cat "$out/etcd.version") into $out"
}

helm() {
  local out="$TOOLS/helm-$HELM_VERSION"
  if [[ -x "$out/helm" ]]; then echo "helm $HELM_VERSION cached in $out"; return; fi
  mkdir -p "$out"
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  # A go-built helm otherwise assumes Kubernetes v1.20 for lint/template capabilities.
  local ldf="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldf="$ldf -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
  done
  CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags "$ldf" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "built helm $HELM_VERSION into $out"
}

kafka() {
  local out="$TOOLS/kafka-$KAFKA_VERSION"
  if [[ -f "$out/.complete" && -f "$out/libs/slf4j-api-$SLF4J_VERSION.jar" ]]; then
    echo "kafka $KAFKA_VERSION cached in $out"; return
  fi
  rm -rf "$out"; mkdir -p "$out/libs"
  local pom; pom=$(mktemp -d)/pom.xml
  cat > "$pom" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.test</groupId><artifactId>kafka-broker-libs</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
  mvn -B -q -f "$pom" dependency:copy-dependencies -DoutputDirectory="$out/libs" -DincludeScope=runtime
  touch "$out/.complete"
  local jars=("$out"/libs/*.jar)
  echo "fetched kafka $KAFKA_VERSION (${#jars[@]} jars) into $out"
}

postgres() {
  local initdbs=(/usr/lib/postgresql/*/bin/initdb)
  if [[ -x ${initdbs[0]} ]]; then
    echo "postgresql server present: ${initdbs[0]%/initdb}"; return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  echo "installed postgresql from Debian"
}

python() {
  python3 -m pip install -q --disable-pip-version-check -e "${repo}[dev]"
  echo "installed python package and dev dependencies"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 || ${targets[0]} == all ]] && targets=(python postgres kafka k8s helm)
for t in "${targets[@]}"; do
  case $t in
    k8s|helm|kafka|postgres|python) stage "$t" "$t" ;;
    *) echo "unknown target: $t" >&2; exit 2 ;;
  esac
done
echo "tools: $TOOLS"
