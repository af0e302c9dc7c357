#!/usr/bin/env bash
# ansible-test sanity, with no ignore files, on the collection as it ships (the
# `ansible-galaxy collection build` artifact), for every ansible-core version
# this machine can install from 2.16 up.
#
#   tests/sanity/run.sh                       all versions
#   SANITY_CORE_VERSIONS="2.19" tests/sanity/run.sh
#   SANITY_ARGS="--test validate-modules" tests/sanity/run.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
versions=${SANITY_CORE_VERSIONS:-"2.16 2.17 2.18 2.19 2.20 2.21"}
venvs=${SANITY_VENV_DIR:-$repo/.venv-sanity}
main_venv=${VENV:-$repo/.venv}

if ls "$repo"/tests/sanity/ignore-*.txt >/dev/null 2>&1; then
  echo "sanity: ignore files are not allowed: $(ls "$repo"/tests/sanity/ignore-*.txt)" >&2
  exit 1
fi

# ansible-test runs module code under every Python it supports; give it the
# pyenv interpreters (python3.9 ... python3.13) alongside the system one.
if command -v pyenv >/dev/null 2>&1; then
  for dir in "$(pyenv root)"/versions/3.*/bin; do PATH="$PATH:$dir"; done
fi

# The get-pip.py ansible-test downloads is not reachable from every build
# machine: put the stand-in where ansible-test caches it.
mkdir -p "$HOME/.ansible/test/cache"
for pip_version in 23_1_2 24_0 24_2 25_0_1 25_1 25_2 25_3; do
  cp "$repo/tests/sanity/get_pip_standin.py" "$HOME/.ansible/test/cache/get_pip_${pip_version}.py"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo ">> building the collection artifact"
"$main_venv/bin/ansible-galaxy" collection build "$repo" --output-path "$work" --force >/dev/null
tree="$work/ansible_collections/llmd/stack"
mkdir -p "$tree"
tar -xzf "$work"/llmd-stack-*.tar.gz -C "$tree"
# The import and validate-modules tests load kubernetes.core's module_utils.
core=$("$main_venv/bin/python" -c 'import ansible_collections.kubernetes.core as c; print(list(c.__path__)[0])')
mkdir -p "$work/ansible_collections/kubernetes"
cp -r "$core" "$work/ansible_collections/kubernetes/core"

status=0
for version in $versions; do
  minor=${version#2.}
  python=python3.11
  [[ $minor -ge 20 ]] && python=python3.12
  venv="$venvs/core-$version"
  if [[ ! -x "$venv/bin/ansible-test" ]]; then
    echo ">> creating $venv (ansible-core $version, $python)"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet "ansible-core~=$version.0"
  fi
  echo ">> ansible-test sanity, ansible-core $("$venv/bin/ansible" --version | sed -n '1s/.*core \([0-9.]*\).*/\1/p')"
  started=$(date +%s)
  # shellcheck disable=SC2086
  if (cd "$tree" && "$venv/bin/ansible-test" sanity --venv --color no ${SANITY_ARGS:-}); then
    echo ">> ansible-core $version: sanity passed in $(( $(date +%s) - started ))s"
  else
    echo ">> ansible-core $version: sanity FAILED" >&2
    status=1
  fi
done
exit $status
