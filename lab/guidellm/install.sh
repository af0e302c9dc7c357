#!/usr/bin/env bash
# Install guidellm into a venv outside the work tree, with an offline tokenizer.
#   $LLMD_LAB_CACHE/guidellm-<requirements hash>/{venv,tokenizer}
# A second run with the same requirements is a no-op. Prints the venv's bin dir.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}
cache_root=${LLMD_LAB_CACHE:-$HOME/.cache/llmd-lab}
digest=$(cat "$here/requirements.txt" "$here/make_tokenizer.py" | sha256sum | cut -c1-12)
prefix="$cache_root/guidellm-$digest"

if [[ -f "$prefix/.installed" ]]; then
  echo "$prefix/venv/bin"
  exit 0
fi
started=$SECONDS
echo "guidellm: installing $(grep -m1 '^guidellm==' "$here/requirements.txt") into $prefix" >&2
rm -rf "$prefix"
"$python" -m venv "$prefix/venv" >&2 || { echo "guidellm: creating the venv failed" >&2; exit 1; }
"$prefix/venv/bin/pip" install --quiet -r "$here/requirements.txt" >&2 ||
  { echo "guidellm: pip install -r $here/requirements.txt failed" >&2; exit 1; }
"$prefix/venv/bin/python" "$here/make_tokenizer.py" "$prefix/tokenizer" >&2 ||
  { echo "guidellm: writing the offline tokenizer failed" >&2; exit 1; }
touch "$prefix/.installed"
echo "guidellm: ready in $((SECONDS - started)) s" >&2
echo "$prefix/venv/bin"
