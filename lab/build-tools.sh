#!/usr/bin/env bash
# Build the local lab's tools from published Go modules, through the module
# proxy, with the ordinary `go` client. Versions come from lab/versions.env.
#
#   lab/build-tools.sh            build every tool that is missing or stale
#   lab/build-tools.sh helm etcd  build only these (if missing or stale)
#   lab/build-tools.sh --print-bin
#
# Binaries land in $LLMD_LAB_CACHE/lab-<kube version>/bin (default cache root
# ~/.cache/llmd-lab), outside the work tree. Each tool records the pins it was
# built from, so a tool already built is never rebuilt and a changed pin
# rebuilds only that tool. GOMODCACHE and GOCACHE stay where `go` keeps them.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache_root=${LLMD_LAB_CACHE:-$HOME/.cache/llmd-lab}
prefix="$cache_root/lab-$KUBE_VERSION"
bin="$prefix/bin"
work="$prefix/build"
stamps="$bin/.stamps"

if [[ "${1:-}" == "--print-bin" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin" "$work" "$stamps"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false -trimpath"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

step=""
tool=""
replaces=()
started=0
on_error() {
  echo "lab build FAILED: tool '$tool', step '$step' (see the output above)" >&2
}
trap on_error ERR

begin() { tool=$1; pins=$2; started=$(date +%s); echo ">> building $tool ($pins)"; }
finish() {
  echo "$pins" >"$stamps/$tool"
  echo ">> built $tool in $(( $(date +%s) - started ))s -> $bin"
}
# up_to_date <tool> <pins> <binary>...: built from exactly these pins and present.
up_to_date() {
  local t=$1 p=$2 b; shift 2
  [[ -f "$stamps/$t" && "$(cat "$stamps/$t")" == "$p" ]] || return 1
  for b in "$@"; do [[ -x "$bin/$b" ]] || return 1; done
}

# Every tool is built inside a small wrapper main module (go mod init, go get,
# go build) rather than with `go install mod@version`: the proxy refuses the
# module list for some of these modules, and `go install` insists on reading it
# for deprecation notices.
wrapper_build() {
  local name=$1 version=$2 ldflags=$3 out=$4; shift 4
  local dir="$work/$name"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  step="go mod init"
  go mod init "local/$name-build" >/dev/null 2>&1
  local r
  for r in "${replaces[@]}"; do go mod edit -replace="$r"; done
  step="go get"
  local pkg
  for pkg in "$@"; do go get "$pkg@$version"; done
  step="go build $*"
  go build -ldflags "-s -w $ldflags" -o "$out" "$@"
  cd "$here"
}

build_sim() {
  local p="github.com/llm-d/llm-d-inference-sim $INFERENCE_SIM_VERSION"
  up_to_date llm-d-inference-sim "$p" llm-d-inference-sim && return 0
  begin llm-d-inference-sim "$p"
  wrapper_build sim "$INFERENCE_SIM_VERSION" "" "$bin/" \
    github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim
  finish
}

build_helm() {
  local p="helm.sh/helm/v3 $HELM_VERSION"
  up_to_date helm "$p" helm && return 0
  begin helm "$p"
  wrapper_build helm "$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "$bin/" helm.sh/helm/v3/cmd/helm
  finish
}

build_helmfile() {
  local p="github.com/helmfile/helmfile $HELMFILE_VERSION, replacing $HELMFILE_REPLACES"
  up_to_date helmfile "$p" helmfile && return 0
  begin helmfile "$p"
  # The module proxy refuses some versions helmfile requires; replace them with
  # the nearest version it serves (pinned in versions.env).
  local r replaces=()
  for r in $HELMFILE_REPLACES; do replaces+=("${r%@*}=$r"); done
  wrapper_build helmfile "$HELMFILE_VERSION" \
    "-X go.szostok.io/version.version=$HELMFILE_VERSION" "$bin/" github.com/helmfile/helmfile
  finish
}

build_kwok() {
  local p="sigs.k8s.io/kwok $KWOK_VERSION, kube $KUBE_VERSION"
  up_to_date kwok "$p" kwok kwokctl && return 0
  begin kwok "$p"
  local v=sigs.k8s.io/kwok/pkg/consts
  wrapper_build kwok "$KWOK_VERSION" \
    "-X $v.Version=${KWOK_VERSION#v} -X $v.KubeVersion=${KUBE_VERSION#v}" "$bin/" \
    sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  finish
}

build_etcd() {
  local p="go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  up_to_date etcd "$p" etcd && return 0
  begin etcd "$p"
  # etcd's own go.mod has relative replaces, but its requires name real
  # versions, so the wrapper needs no replace lines.
  wrapper_build etcd "$ETCD_VERSION" "" "$bin/etcd" go.etcd.io/etcd/server/v3
  finish
}

# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from
# k8s.io/kubernetes. Its go.mod replaces every staging module with ./staging,
# which a module download does not carry, so a wrapper main module replaces each
# with the published k8s.io/<name> v0.<minor>.<patch>. The replace list is read
# from the proxy's copy of k/k's go.mod, never maintained by hand.
build_kube() {
  local p="k8s.io/kubernetes $KUBE_VERSION"
  up_to_date kubernetes "$p" kube-apiserver kube-controller-manager kube-scheduler kubectl && return 0
  begin kubernetes "$p"
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
  local cmd cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  step="go get"
  for cmd in "${cmds[@]}"; do go get "k8s.io/kubernetes/cmd/$cmd@$KUBE_VERSION"; done
  for cmd in "${cmds[@]}"; do
    step="go build $cmd"
    local t0
    t0=$(date +%s)
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
