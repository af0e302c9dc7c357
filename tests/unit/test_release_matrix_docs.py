"""tools/release_matrix_doc.py: docs/release-matrix.md generated from the release files.

The first test runs the check mode on this checkout, so a release file changed
without regenerating the page fails `make test`.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "release_matrix_doc.py")
RELEASES = os.path.join(ROOT, "roles", "release_matrix", "files", "releases")


def load_tool():
    spec = importlib.util.spec_from_file_location("release_matrix_doc", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release_matrix_doc = load_tool()


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True, check=False)


def copy_matrix(tmp_path):
    """A collection root holding only what the generator reads, plus the committed page."""
    for relative in ("roles/release_matrix/files/releases", "roles/release_matrix/meta",
                     "roles/release_matrix/defaults"):
        shutil.copytree(os.path.join(ROOT, relative), tmp_path / relative)
    (tmp_path / "docs").mkdir()
    shutil.copy(os.path.join(ROOT, "docs", "release-matrix.md"), tmp_path / "docs")
    return tmp_path


def test_committed_release_matrix_page_is_current():
    result = run_tool("--check")
    assert result.returncode == 0, result.stderr


def test_page_has_one_row_per_release_with_its_pins():
    with open(os.path.join(ROOT, "docs", "release-matrix.md"), encoding="utf-8") as handle:
        page = handle.read()
    stack_table = page.split("## Stack")[1].split("##")[0]
    rows = [line for line in stack_table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    names = sorted(name[:-4] for name in os.listdir(RELEASES) if name.endswith(".yml"))
    assert len(rows) == len(names)
    for name in names:
        with open(os.path.join(RELEASES, name + ".yml"), encoding="utf-8") as handle:
            release = yaml.safe_load(handle)
        [row] = [row for row in rows if row.split("|")[1].strip().strip("*").split("*")[0] == name]
        for pin in (release["gateway_api"]["version"], release["gaie"]["version"],
                    release["inference_pool"]["api_version"], release["istio"]["version"],
                    release["istio"]["inference_extension_env"], release["charts"]["infra"]["version"],
                    release["charts"]["gaie"]["version"], release["charts"]["modelservice"]["version"],
                    release["labels"]["inference_serving"]):
            assert "`%s`" % pin in row, "%s: %s missing from %s" % (name, pin, row)
        assert ("`%s`" % release["images"]["epp"]) in row if release["images"]["epp"] else row.endswith(
            "| — | `%s` |" % release["labels"]["inference_serving"])


def test_default_release_is_marked():
    with open(os.path.join(ROOT, "roles", "release_matrix", "defaults", "main.yml"), encoding="utf-8") as handle:
        default = yaml.safe_load(handle)["release_matrix_name"]
    with open(os.path.join(ROOT, "docs", "release-matrix.md"), encoding="utf-8") as handle:
        page = handle.read()
    assert "| **%s** (default) |" % default in page
    assert page.count("(default) |") == 5  # one per table


def test_check_fails_on_a_changed_release_and_write_fixes_it(tmp_path):
    root = copy_matrix(tmp_path)
    assert run_tool("--check", "--root", str(root)).returncode == 0
    v06 = root / "roles/release_matrix/files/releases/v0.6.yml"
    v06.write_text(v06.read_text().replace("version: v1.4.0\n  url: https://github.com/kubernetes-sigs/gateway-api-inference",
                                           "version: v1.4.1\n  url: https://github.com/kubernetes-sigs/gateway-api-inference"))
    result = run_tool("--check", "--root", str(root))
    assert result.returncode == 1
    assert "docs/release-matrix.md is out of date with roles/release_matrix/files/releases" in result.stderr
    assert run_tool("--root", str(root)).returncode == 0
    assert "| **v0.6** (default) | `v1.5.1` | `v1.4.1` |" in (root / "docs" / "release-matrix.md").read_text()
    assert run_tool("--check", "--root", str(root)).returncode == 0


def test_a_release_file_the_role_cannot_select_is_an_error(tmp_path):
    root = copy_matrix(tmp_path)
    shutil.copy(root / "roles/release_matrix/files/releases/v0.6.yml", root / "roles/release_matrix/files/releases/v0.7.yml")
    result = run_tool("--check", "--root", str(root))
    assert result.returncode == 1
    assert "release files" in result.stderr and "release_matrix_name choices" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_release_file_with_another_name_is_an_error(tmp_path):
    root = copy_matrix(tmp_path)
    v05 = root / "roles/release_matrix/files/releases/v0.5.yml"
    v05.write_text(v05.read_text().replace("name: v0.5\n", "name: v0.5.1\n"))
    with pytest.raises(SystemExit, match=r"v0.5.yml: name is 'v0.5.1', expected 'v0.5'"):
        release_matrix_doc.expected_page(str(root))


def test_missing_values_render_as_a_dash():
    release = {"gateway_api": {"version": "v1"}, "gaie": None, "images": {"epp": None}}
    page = release_matrix_doc.render([("r1", release)], "r1")
    assert "| **r1** (default) | `v1` | — | — | — | — | — | — | — | — | — |" in page
