#!/usr/bin/env bash
# Build the local lab's tools from published Go modules, through the module
# proxy, with the ordinary `go` client. Versions come from lab/versions.env.
#
#   lab/build-tools.sh            build every tool that is missing
#   lab/build-tools.sh helm etcd  build only these (if missing)
#   lab/build-tools.sh --print-bin
#
# Binaries land in $LLMD_LAB_CACHE/<key>/bin (default ~/.cache/llmd-lab), where
# <key> is derived from the pinned versions, so a pin change never reuses a stale
# binary and a tool already built is never rebuilt.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache_root=${LLMD_LAB_CACHE:-$HOME/.cache/llmd-lab}
key="k8s-${KUBE_VERSION}-$(sha256sum "$here/versions.env" | cut -c1-8)"
prefix="$cache_root/$key"
bin="$prefix/bin"
work="$prefix/build"

if [[ "${1:-}" == "--print-bin" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin" "$work"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -trimpath"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

step=""
tool=""
started=0
on_error() {
  echo "lab build FAILED: tool '$tool', step '$step' (see the output above)" >&2
}
trap on_error ERR

begin() { tool=$1; started=$(date +%s); echo ">> building $tool ($2)"; }
finish() { echo ">> built $tool in $(( $(date +%s) - started ))s -> $bin"; }
have() { local b; for b in "$@"; do [[ -x "$bin/$b" ]] || return 1; done; }

# Every tool is built inside a small wrapper main module (go mod init, go get,
# go build) rather than with `go install mod@version`: the proxy refuses the
# module list for some of these modules, and `go install` insists on reading it
# for deprecation notices.
wrapper_build() {
  local name=$1 version=$2 ldflags=$3; shift 3
  local dir="$work/$name"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  step="go mod init"
  go mod init "local/$name-build" >/dev/null 2>&1
  step="go get"
  local pkg
  for pkg in "$@"; do go get "$pkg@$version"; done
  step="go build $*"
  go build -ldflags "-s -w $ldflags" -o "$bin/" "$@"
  cd "$here"
}

build_sim() {
  have llm-d-inference-sim && return 0
  begin llm-d-inference-sim "github.com/llm-d/llm-d-inference-sim $INFERENCE_SIM_VERSION"
  wrapper_build sim "$INFERENCE_SIM_VERSION" "" \
    github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim
  finish
}

build_helm() {
  have helm && return 0
  begin helm "helm.sh/helm/v3 $HELM_VERSION"
  wrapper_build helm "$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  finish
}

build_helmfile() {
  have helmfile && return 0
  begin helmfile "github.com/helmfile/helmfile $HELMFILE_VERSION"
  wrapper_build helmfile "$HELMFILE_VERSION" \
    "-X go.szostok.io/version.version=$HELMFILE_VERSION" github.com/helmfile/helmfile
  finish
}

build_kwok() {
  have kwok kwokctl && return 0
  begin kwok "sigs.k8s.io/kwok $KWOK_VERSION (kwok, kwokctl)"
  local v=sigs.k8s.io/kwok/pkg/consts
  wrapper_build kwok "$KWOK_VERSION" \
    "-X $v.Version=${KWOK_VERSION#v} -X $v.KubeVersion=${KUBE_VERSION#v}" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  finish
}

build_etcd() {
  have etcd && return 0
  begin etcd "go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  # etcd's own go.mod has relative replaces, but its requires name real
  # versions, so the wrapper needs no replace lines.
  wrapper_build etcd "$ETCD_VERSION" "" go.etcd.io/etcd/server/v3
  mv "$bin/v3" "$bin/etcd"
  finish
}

# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from
# k8s.io/kubernetes. Its go.mod replaces every staging module with ./staging,
# which a module download does not carry, so a wrapper main module replaces each
# with the published k8s.io/<name> v0.<minor>.<patch>. The replace list is read
# from the proxy's copy of k/k's go.mod, never maintained by hand.
build_kube() {
  have kube-apiserver kube-controller-manager kube-scheduler kubectl && return 0
  begin kubernetes "k8s.io/kubernetes $KUBE_VERSION (apiserver, controller-manager, scheduler, kubectl)"
  local dir="$work/kubernetes" staging="v0.${KUBE_VERSION#v1.}"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  step="read k8s.io/kubernetes go.mod"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local godir goline
  goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
  godir=$(sed -n 's/^godebug \(.*\)$/\1/p' "$gomod")
  step="write wrapper go.mod"
  go mod init local/kubebuild >/dev/null 2>&1
  go mod edit -go="$goline"
  [[ -n "$godir" ]] && go mod edit -godebug="$godir"
  local m n=0
  for m in $(sed -n 's|^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*|\1|p' "$gomod"); do
    go mod edit -replace="$m=$m@$staging"
    n=$((n + 1))
  done
  echo "   $n staging replaces -> $staging"
  step="go get"
  go get "k8s.io/kubernetes@$KUBE_VERSION"
  local cmd
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    step="go build $cmd"
    local t0=$(date +%s)
    local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
    local ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    go build -ldflags "$ld" -o "$bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    echo "   $cmd: $(( $(date +%s) - t0 ))s"
  done
  cd "$here"
  finish
}

all=(sim helm kwok etcd kube helmfile)
wanted=("$@")
[[ ${#wanted[@]} -eq 0 ]] && wanted=("${all[@]}")
for t in "${wanted[@]}"; do
  case "$t" in
    sim|llm-d-inference-sim) build_sim ;;
    helm) build_helm ;;
    helmfile) build_helmfile ;;
    kwok|kwokctl) build_kwok ;;
    etcd) build_etcd ;;
    kube|kubernetes|kubectl|kube-apiserver) build_kube ;;
    *) echo "unknown tool '$t' (known: ${all[*]})" >&2; exit 2 ;;
  esac
done
echo "lab tools ready in $bin"
