#!/usr/bin/env bash
# shellcheck disable=SC2317  # the gate_* functions are called by name from the loop at the end
# Release quality gates for llmd.stack: what Galaxy and AAP will see, checked
# on the collection as it ships (the `ansible-galaxy collection build` tarball).
#
#   tools/gates.sh                  every gate, in order
#   tools/gates.sh ansible-doc ee   only these
#   EE_CONTEXT=context tools/gates.sh ee   keep the EE build context (then: podman build -t llmd-stack-ee context/)
#
# Gates:
#   docs            role READMEs and docs/release-matrix.md match what tools/ would generate
#   spec-defaults   each role's meta/argument_specs.yml and defaults/main.yml agree
#   build           ansible-galaxy collection build
#   ansible-doc     every module and role renders with ansible-doc, without warnings
#   changelog       antsibull-changelog lint
#   ee              ansible-builder create (and introspect) on execution-environment.yml
#   importer        galaxy-importer on the tarball (ansible-doc, ansible-lint, metadata; offline, no containers)
#   antsibull-docs  antsibull-docs lint-collection-docs --plugin-docs
#
# galaxy-importer and antsibull-docs get their own venvs (.venv-importer,
# .venv-docs, from tools/requirements-*.txt) because they pin their own
# ansible-lint/ansible-core. Every gate runs even when an earlier one failed;
# the summary lists each gate's result and time, and the exit status is 1 when
# any failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$repo/.venv}
python=${GATES_PYTHON:-python3.11}
all_gates=(docs spec-defaults build ansible-doc changelog ee importer antsibull-docs)
gates=("$@")
[[ ${#gates[@]} -eq 0 ]] && gates=("${all_gates[@]}")
for gate in "${gates[@]}"; do
  [[ " ${all_gates[*]} " == *" $gate "* ]] || { echo "gates: unknown gate '$gate' (known: ${all_gates[*]})" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=""
installed="$work/installed"   # ansible_collections/llmd/stack from the tarball

# kubernetes.core as the .venv's ansible package provides it.
core_collections=$("$venv/bin/python" -c \
  'import os, ansible_collections.kubernetes.core as c; print(os.path.dirname(os.path.dirname(os.path.dirname(list(c.__path__)[0]))))')

need_tarball() {
  [[ -n "$tarball" ]] && return 0
  "$venv/bin/ansible-galaxy" collection build "$repo" --output-path "$work/dist" --force >/dev/null || return 1
  tarball=$(ls "$work"/dist/llmd-stack-*.tar.gz)
  ANSIBLE_COLLECTIONS_PATH="$installed" "$venv/bin/ansible-galaxy" collection install "$tarball" \
    --no-deps --force -p "$installed" >/dev/null || return 1
  [[ -f "$installed/ansible_collections/llmd/stack/MANIFEST.json" ]]
}

tool_venv() {  # tool_venv DIR REQUIREMENTS: create or update a venv only when the requirements changed
  local dir=$1 requirements=$2
  if [[ ! -f "$dir/.requirements" ]] || ! cmp -s "$requirements" "$dir/.requirements"; then
    echo ">> installing $(basename "$requirements") into $dir"
    "$python" -m venv "$dir" && "$dir/bin/pip" install --quiet --upgrade pip \
      && "$dir/bin/pip" install --quiet -r "$requirements" && cp "$requirements" "$dir/.requirements"
  fi
}

gate_docs() {
  "$venv/bin/python" "$repo/tools/role_readme.py" --check && "$venv/bin/python" "$repo/tools/release_matrix_doc.py" --check
}

gate_spec_defaults() {
  "$venv/bin/python" "$repo/tools/role_readme.py" --defaults
}

gate_build() {
  need_tarball && echo "built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB, $(tar -tzf "$tarball" | wc -l) entries)"
}

gate_ansible_doc() {
  need_tarball || return 1
  local status=0 kind name output
  local -a modules roles
  mapfile -t modules < <(find "$installed/ansible_collections/llmd/stack/plugins/modules" -name '*.py' -printf '%f\n' \
                         | sed 's|\.py$||' | sort)
  mapfile -t roles < <(find "$installed/ansible_collections/llmd/stack/roles" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
  if [[ ${#modules[@]} -eq 0 || ${#roles[@]} -eq 0 ]]; then
    echo "FAIL the built collection has no modules or no roles"
    return 1
  fi
  for kind in module role; do
    local -n names=${kind}s
    for name in "${names[@]}"; do
      # Rendered text must come out without a warning or error (unknown fragments, bad YAML, bad markup).
      if output=$(ANSIBLE_COLLECTIONS_PATH="$installed:$core_collections" "$venv/bin/ansible-doc" -t "$kind" "llmd.stack.$name" 2>&1 >/dev/null) \
         && [[ -z "$output" ]]; then
        echo "ok   ansible-doc -t $kind llmd.stack.$name"
      else
        echo "FAIL ansible-doc -t $kind llmd.stack.$name: $output"
        status=1
      fi
    done
  done
  return "$status"
}

gate_changelog() {
  (cd "$repo" && "$venv/bin/antsibull-changelog" lint)
}

gate_ee() {
  need_tarball || return 1
  local source="$work/ee-source" context=${EE_CONTEXT:-$work/ee-context}
  # The definition's relative paths, as they are in a checkout with the tarball built into dist/.
  mkdir -p "$source/dist" "$source/tools"
  cp "$repo/execution-environment.yml" "$repo/requirements.txt" "$repo/bindep.txt" "$source/"
  cp "$repo/tools/ee_install_client_tools.py" "$source/tools/"
  cp "$tarball" "$source/dist/llmd-stack.tar.gz"
  "$venv/bin/ansible-builder" create --file "$source/execution-environment.yml" --context "$context" \
      --output-filename Containerfile || return 1
  echo ">> Containerfile: $context/Containerfile"
  grep -E '^ARG (HELM|HELMFILE|HELM_DIFF|KUBECTL)_VERSION=' "$context/Containerfile"
  # What the builder stage will install from the collection's meta/execution-environment.yml.
  local deps
  deps=$("$venv/bin/ansible-builder" introspect --sanitize "$installed") || return 1
  echo "$deps"
  # The collection's meta/execution-environment.yml must reach the image: its Python requirements appear here.
  grep -q 'kubernetes' <<<"$deps" || { echo "FAIL introspect found no Python requirements of llmd.stack"; return 1; }
}

gate_importer() {
  need_tarball || return 1
  tool_venv "$repo/.venv-importer" "$repo/tools/requirements-importer.txt" || return 1
  local log="$work/importer.log"
  (cd "$work" && PATH="$repo/.venv-importer/bin:$PATH" GALAXY_IMPORTER_CONFIG="$repo/tools/galaxy-importer.cfg" \
     "$repo/.venv-importer/bin/python" -m galaxy_importer.main "$tarball" >"$log" 2>&1)
  local rc=$?
  grep -E '^(WARNING|ERROR)' "$log"
  echo ">> galaxy-importer: exit $rc, $(grep -c '^WARNING' "$log") warning(s), $(grep -c '^ERROR' "$log") error(s)"
  tail -n 1 "$log"
  [[ $rc -eq 0 ]] && ! grep -q '^ERROR' "$log"
}

gate_antsibull_docs() {
  need_tarball || return 1
  tool_venv "$repo/.venv-docs" "$repo/tools/requirements-docs.txt" || return 1
  # Only this collection and kubernetes.core (its dependency) are visible, so references to both are validated.
  local collections="$work/docs-collections/ansible_collections"
  mkdir -p "$collections/kubernetes"
  ln -s "$core_collections/ansible_collections/kubernetes/core" "$collections/kubernetes/core"
  ln -s "$installed/ansible_collections/llmd" "$collections/llmd"
  PATH="$venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$work/docs-collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
    "$repo/.venv-docs/bin/antsibull-docs" lint-collection-docs --plugin-docs --validate-collection-refs all \
    "$collections/llmd/stack"
}

declare -A result seconds
overall=0
for gate in "${gates[@]}"; do
  echo "== $gate"
  started=${EPOCHREALTIME/./}
  if "gate_${gate//-/_}"; then result[$gate]=pass; else result[$gate]=FAIL; overall=1; fi
  elapsed=$(( ${EPOCHREALTIME/./} - started ))
  seconds[$gate]=$(printf '%d.%d' $(( elapsed / 1000000 )) $(( elapsed % 1000000 / 100000 )))
  echo "== $gate: ${result[$gate]} in ${seconds[$gate]}s"
done

echo
echo "gate             result  seconds"
for gate in "${gates[@]}"; do
  printf '%-16s %-7s %7s\n' "$gate" "${result[$gate]}" "${seconds[$gate]}"
done
exit $overall
