"""tools/role_readme.py: role READMEs generated from meta/argument_specs.yml.

The first test runs the check mode on this checkout, so a README that no longer
matches its argument spec fails `make test`.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "role_readme.py")


def load_tool():
    spec = importlib.util.spec_from_file_location("role_readme", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


role_readme = load_tool()


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True, check=False)


def test_committed_role_readmes_are_current():
    result = run_tool("--check")
    assert result.returncode == 0, result.stderr


def test_every_role_has_a_readme_with_its_hand_written_part():
    for role in role_readme.roles(ROOT):
        with open(os.path.join(ROOT, "roles", role, "README.md"), encoding="utf-8") as handle:
            text = handle.read()
        assert text.startswith("# llmd.stack.%s\n" % role)
        assert role_readme.HAND_WRITTEN_START in text and role_readme.HAND_WRITTEN_END in text
        assert role_readme.hand_written_part(text).strip(), "roles/%s/README.md has an empty hand-written part" % role
        assert "## Entry points" in text


def write_role(root, name, specs, defaults=None, readme=None):
    role = root / "roles" / name
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump({"argument_specs": specs}, sort_keys=False))
    if defaults is not None:
        (role / "defaults").mkdir()
        (role / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults, sort_keys=False))
    if readme is not None:
        (role / "README.md").write_text(readme)
    return role


SPECS = {
    "main": {
        "short_description": "Do the thing",
        "description": ["Uses C(kubectl) and M(llmd.stack.llmd_stack_facts).", "Reads O(demo_mode)."],
        "options": {
            "demo_mode": {"type": "str", "default": "fast", "choices": ["fast", "safe"],
                          "description": "Either I(fast) or B(safe)."},
            "demo_items": {"type": "list", "elements": "str", "default": ["a|b"], "description": "Items."},
            "demo_token": {"type": "str", "no_log": True, "description": "Token."},
            "demo_target": {"type": "str", "required": True, "description": "Target."},
            "demo_pvc": {"type": "dict", "default": {"name": "", "size": "1Gi"}, "description": "PVC.",
                         "options": {"name": {"type": "str", "default": "", "description": "Name."},
                                     "size": {"type": "str", "default": "1Gi", "description": "Size."}}},
        },
    },
}


def test_readme_rendering(tmp_path):
    SPECS_COPY = dict(SPECS, destroy={"short_description": "Undo the thing", "options": SPECS["main"]["options"]})
    text = role_readme.render_readme("demo", SPECS_COPY, "Some prose.")
    lines = text.splitlines()
    assert lines[0] == "# llmd.stack.demo"
    assert "Do the thing." in lines
    assert "- Uses `kubectl` and `llmd.stack.llmd_stack_facts`." in lines
    assert "| `demo_mode` | str | `fast` | `fast`, `safe` | no | Either *fast* or **safe**. |" in lines
    assert "| `demo_items` | list of str | `[a\\|b]` |  | no | Items. |" in lines
    assert "| `demo_token` | str |  |  | no | Token. Never logged. |" in lines
    assert "| `demo_target` | str |  |  | yes | Target. |" in lines
    assert "| `demo_pvc.size` | str | `1Gi` |  | no | Size. |" in lines
    assert "| `demo_pvc` | dict | `{name: '', size: 1Gi}` |  | no | PVC. |" in lines
    assert "Options: the same as `main`." in lines
    assert lines.index("### `main`") < lines.index("### `destroy`")
    assert role_readme.hand_written_part(text) == "Some prose."


def test_check_fails_on_a_stale_readme_and_write_keeps_the_hand_written_part(tmp_path):
    readme = role_readme.render_readme("demo", SPECS, "Hand-written\n\nprose | with a pipe.")
    write_role(tmp_path, "demo", SPECS, readme=readme)
    assert run_tool("--check", "--root", str(tmp_path)).returncode == 0

    changed = yaml.safe_load(yaml.safe_dump(SPECS))
    changed["main"]["options"]["demo_mode"]["default"] = "safe"
    (tmp_path / "roles" / "demo" / "meta" / "argument_specs.yml").write_text(
        yaml.safe_dump({"argument_specs": changed}))
    result = run_tool("--check", "--root", str(tmp_path))
    assert result.returncode == 1
    assert "roles/demo/README.md is out of date with roles/demo/meta/argument_specs.yml" in result.stderr
    assert (tmp_path / "roles" / "demo" / "README.md").read_text() == readme, "--check must not write"

    assert run_tool("--root", str(tmp_path)).returncode == 0
    text = (tmp_path / "roles" / "demo" / "README.md").read_text()
    assert "| `demo_mode` | str | `safe` |" in text
    assert role_readme.hand_written_part(text) == "Hand-written\n\nprose | with a pipe."
    assert run_tool("--check", "--root", str(tmp_path)).returncode == 0


def test_missing_readme_is_stale_and_a_readme_without_markers_becomes_hand_written(tmp_path):
    write_role(tmp_path, "bare", SPECS)
    write_role(tmp_path, "old", SPECS, readme="# llmd.stack.old\n\nOld prose.\n\n## Variables\n\n| a | b |\n")
    assert role_readme.stale_readmes(str(tmp_path)) == ["bare", "old"]
    assert run_tool("--root", str(tmp_path)).returncode == 0
    old = (tmp_path / "roles" / "old" / "README.md").read_text()
    assert role_readme.hand_written_part(old) == "Old prose.\n\n## Variables\n\n| a | b |"
    assert role_readme.stale_readmes(str(tmp_path)) == []


def test_a_role_without_argument_specs_is_named(tmp_path):
    (tmp_path / "roles" / "nospec").mkdir(parents=True)
    result = run_tool("--check", "--root", str(tmp_path))
    assert result.returncode == 1
    assert "roles/nospec has no meta/argument_specs.yml" in result.stderr


def test_defaults_disagreements(tmp_path):
    specs = {"main": {"options": {
        "same": {"type": "int", "default": 3},
        "differs": {"type": "bool", "default": True},
        "undeclared_default": {"type": "str"},
        "unset_on_purpose": {"type": "bool"},
        "computed": {"type": "path", "description": "Defaults to a path under playbook_dir."},
        "spec_only": {"type": "str", "default": "x"},
        "needed": {"type": "str", "required": True},
    }}}
    defaults = {"same": 3, "differs": "{{ lookup('env', 'X') }}", "undeclared_default": "y",
                "unset_on_purpose": None, "computed": "{{ playbook_dir }}/x", "not_documented": 1}
    write_role(tmp_path, "demo", specs, defaults=defaults)
    problems = role_readme.defaults_disagreements(str(tmp_path), "demo")
    assert problems == [
        "demo: differs defaults to True in the main spec but to \"{{ lookup('env', 'X') }}\" in defaults/main.yml",
        "demo: spec_only has default 'x' in the main spec but is not in defaults/main.yml",
        "demo: undeclared_default is 'y' in defaults/main.yml but the main spec declares no default",
        "demo: not_documented is in defaults/main.yml but in no entry point of meta/argument_specs.yml",
    ]
    result = run_tool("--defaults", "--root", str(tmp_path))
    assert result.returncode == 1 and result.stdout.count("\n") == 4


@pytest.mark.parametrize("markup, markdown", [
    ("C(a) O(b) V(c) M(d.e) RV(f) P(g) E(h)", "`a` `b` `c` `d.e` `f` `g` `h`"),
    ("I(x) B(y)", "*x* **y**"),
    ("U(https://x.io) L(docs, https://y.io)", "<https://x.io> [docs](https://y.io)"),
])
def test_markdown_from_markup(markup, markdown):
    assert role_readme.markdown_from_markup(markup) == markdown


def test_generator_is_idempotent_on_a_copy_of_this_checkout(tmp_path):
    shutil.copytree(os.path.join(ROOT, "roles"), tmp_path / "roles")
    result = run_tool("--root", str(tmp_path))
    assert result.returncode == 0 and result.stdout == ""
