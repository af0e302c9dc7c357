"""The execution environment definition and its client-tool installer.

No container can be built here, so the EE is checked as far as it can go on
this machine: the pins equal the default release's, `ansible-builder create`
accepts the definition and writes a Containerfile carrying every pin, the
collection tarball it bundles installs from the generated requirements, and the
installer script really downloads, verifies and installs tools, served from a
local HTTP server standing in for the release hosts.
"""
import hashlib
import http.server
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EE_FILE = os.path.join(ROOT, "execution-environment.yml")
INSTALLER = os.path.join(ROOT, "tools", "ee_install_client_tools.py")
BIN = os.path.dirname(sys.executable)

# Build argument in the EE -> key of client_tools in a release file.
PIN_ARGS = {"HELM_VERSION": "helm", "HELMFILE_VERSION": "helmfile",
            "HELM_DIFF_VERSION": "helm_diff", "KUBECTL_VERSION": "kubectl"}


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def ee_build_args():
    """ARG name -> default of the append_final steps."""
    steps = load_yaml(EE_FILE)["additional_build_steps"]["append_final"]
    args = {}
    for step in steps:
        match = re.match(r"^ARG (\w+)=(.*)$", step)
        if match:
            args[match.group(1)] = match.group(2)
    return args


def default_release_pins():
    name = load_yaml(os.path.join(ROOT, "roles", "release_matrix", "defaults", "main.yml"))["release_matrix_name"]
    release = load_yaml(os.path.join(ROOT, "roles", "release_matrix", "files", "releases", name + ".yml"))
    return {tool: str(pins["pinned"]) for tool, pins in release["client_tools"].items()}


def load_installer():
    spec = importlib.util.spec_from_file_location("ee_install_client_tools", INSTALLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ee_pins_equal_the_default_release_pins():
    args = ee_build_args()
    pins = default_release_pins()
    assert set(PIN_ARGS.values()) == set(pins), "release client_tools and the EE pins name different tools"
    for arg, tool in PIN_ARGS.items():
        assert args.get(arg) == pins[tool], (
            "execution-environment.yml ARG %s=%s but the default release pins %s %s"
            % (arg, args.get(arg), tool, pins[tool]))


def test_ee_declares_the_collection_dependencies():
    definition = load_yaml(EE_FILE)
    assert definition["version"] == 3
    deps = definition["dependencies"]
    assert deps["python"] == "requirements.txt" and deps["system"] == "bindep.txt"
    names = [entry["name"] for entry in deps["galaxy"]["collections"]]
    assert "kubernetes.core" in names
    bundled = [entry for entry in deps["galaxy"]["collections"] if entry.get("type") == "file"]
    assert [entry["name"] for entry in bundled] == ["collections/llmd-stack.tar.gz"]
    galaxy = load_yaml(os.path.join(ROOT, "galaxy.yml"))
    core = [entry for entry in deps["galaxy"]["collections"] if entry["name"] == "kubernetes.core"][0]
    assert core["version"] == galaxy["dependencies"]["kubernetes.core"]


@pytest.mark.slow
def test_ansible_builder_create_writes_every_pin_and_a_working_bundle(tmp_path):
    builder = os.path.join(BIN, "ansible-builder")
    if not os.path.exists(builder):
        builder = shutil.which("ansible-builder")
    if not builder:
        pytest.skip("ansible-builder is not installed")
    for name in ("execution-environment.yml", "requirements.txt", "bindep.txt"):
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    (tmp_path / "tools").mkdir()
    shutil.copy(INSTALLER, tmp_path / "tools")
    dist = tmp_path / "dist"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", ROOT,
                    "--output-path", str(dist), "--force"], check=True, capture_output=True)
    [tarball] = list(dist.glob("llmd-stack-*.tar.gz"))
    tarball.rename(dist / "llmd-stack.tar.gz")

    result = subprocess.run([builder, "create", "--file", "execution-environment.yml", "--context", "context",
                             "--output-filename", "Containerfile"],
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No matches" not in result.stdout + result.stderr
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    for arg, tool in PIN_ARGS.items():
        assert "ARG %s=%s" % (arg, default_release_pins()[tool]) in containerfile
    assert "ENV HELM_PLUGINS=" in containerfile
    assert "/tmp/ee_install_client_tools.py --helm \"$HELM_VERSION\"" in containerfile
    build = tmp_path / "context" / "_build"
    assert (build / "scripts" / "ee_install_client_tools.py").is_file()

    # The galaxy stage runs `ansible-galaxy collection install -r requirements.yml` in /build:
    # install the bundled (file) entries the same way, offline.
    requirements = load_yaml(build / "requirements.yml")
    local = {"collections": [entry for entry in requirements["collections"] if entry.get("type") == "file"]}
    (build / "local.yml").write_text(yaml.safe_dump(local))
    result = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-r", "local.yml",
                             "--no-deps", "--force", "-p", str(tmp_path / "installed")],
                            cwd=build, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = tmp_path / "installed" / "ansible_collections" / "llmd" / "stack" / "MANIFEST.json"
    assert manifest.is_file()


def test_release_urls_follow_the_upstream_layouts():
    installer = load_installer()
    urls = {tool: installer.release_files(tool, version, "amd64", installer.DEFAULT_BASE_URLS[tool])
            for tool, version in (("helm", "3.19.0"), ("helmfile", "1.4.4"),
                                  ("helm_diff", "3.13.0"), ("kubectl", "1.34.4"))}
    assert urls["helm"][:2] == ("https://get.helm.sh/helm-v3.19.0-linux-amd64.tar.gz",
                                "https://get.helm.sh/helm-v3.19.0-linux-amd64.tar.gz.sha256sum")
    assert urls["helmfile"][:2] == (
        "https://github.com/helmfile/helmfile/releases/download/v1.4.4/helmfile_1.4.4_linux_amd64.tar.gz",
        "https://github.com/helmfile/helmfile/releases/download/v1.4.4/helmfile_1.4.4_checksums.txt")
    assert urls["helm_diff"][:2] == (
        "https://github.com/databus23/helm-diff/releases/download/v3.13.0/helm-diff-linux-amd64.tgz",
        "https://github.com/databus23/helm-diff/releases/download/v3.13.0/helm-diff_3.13.0_checksums.txt")
    assert urls["kubectl"][:2] == ("https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubectl",
                                   "https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubectl.sha256")


@pytest.mark.parametrize("text, expected", [
    ("ABC123  helm-v3.19.0-linux-amd64.tar.gz\n", "abc123"),
    ("111  helmfile_1.4.4_darwin_amd64.tar.gz\n222  helmfile_1.4.4_linux_amd64.tar.gz\n", "222"),
    ("333 *helmfile_1.4.4_linux_amd64.tar.gz\n", "333"),
    ("444\n", "444"),
])
def test_digest_from_checksum_file(text, expected):
    installer = load_installer()
    name = "helmfile_1.4.4_linux_amd64.tar.gz" if "helmfile" in text else "helm-v3.19.0-linux-amd64.tar.gz"
    assert installer.digest_from_checksum_file(text, name) == expected


def test_digest_from_checksum_file_without_the_entry():
    installer = load_installer()
    with pytest.raises(installer.InstallError, match="no entry for helm-diff-linux-amd64.tgz"):
        installer.digest_from_checksum_file("123  helm-diff-linux-arm64.tgz\n", "helm-diff-linux-amd64.tgz")


# --- the installer against a local release server ------------------------------------------

def script(body):
    return ("#!/bin/sh\n" + body + "\n").encode()


def tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def sha(content):
    return hashlib.sha256(content).hexdigest()


def fake_releases(helm_reports="v3.19.0"):
    """Path -> bytes of the four releases, laid out like the real download hosts."""
    helm = tar_gz({"linux-amd64/helm": script(
        'if [ "$1" = diff ]; then shift; exec "$HELM_PLUGINS/helm-diff/bin/diff" "$@"; fi\necho %s' % helm_reports),
        "linux-amd64/LICENSE": b"license"})
    helmfile = tar_gz({"helmfile": script("echo helmfile version v1.4.4"), "README.md": b"readme"})
    helm_diff = tar_gz({"diff/bin/diff": script("echo 3.13.0"), "diff/plugin.yaml": b"name: diff\nversion: 3.13.0\n"})
    kubectl = script("echo 'Client Version: v1.34.4'")
    return {
        "/helm/helm-v3.19.0-linux-amd64.tar.gz": helm,
        "/helm/helm-v3.19.0-linux-amd64.tar.gz.sha256sum": ("%s  helm-v3.19.0-linux-amd64.tar.gz\n" % sha(helm)).encode(),
        "/helmfile/v1.4.4/helmfile_1.4.4_linux_amd64.tar.gz": helmfile,
        "/helmfile/v1.4.4/helmfile_1.4.4_checksums.txt": (
            "%s  helmfile_1.4.4_linux_arm64.tar.gz\n%s  helmfile_1.4.4_linux_amd64.tar.gz\n"
            % (sha(b"other"), sha(helmfile))).encode(),
        "/helm-diff/v3.13.0/helm-diff-linux-amd64.tgz": helm_diff,
        "/helm-diff/v3.13.0/helm-diff_3.13.0_checksums.txt": ("%s  helm-diff-linux-amd64.tgz\n" % sha(helm_diff)).encode(),
        "/kubectl/v1.34.4/bin/linux/amd64/kubectl": kubectl,
        "/kubectl/v1.34.4/bin/linux/amd64/kubectl.sha256": sha(kubectl).encode(),
    }


@pytest.fixture
def release_server():
    files = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server naming)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield files, "http://127.0.0.1:%d" % server.server_port
    server.shutdown()
    server.server_close()


def run_installer(base, tmp_path, *extra):
    command = [sys.executable, INSTALLER, "--arch", "amd64",
               "--helm", "3.19.0", "--helmfile", "1.4.4", "--helm-diff", "3.13.0", "--kubectl", "1.34.4",
               "--helm-base-url", base + "/helm", "--helmfile-base-url", base + "/helmfile",
               "--helm-diff-base-url", base + "/helm-diff", "--kubectl-base-url", base + "/kubectl",
               "--bin-dir", str(tmp_path / "bin"), "--helm-plugins", str(tmp_path / "plugins"),
               "--timeout", "10"] + list(extra)
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_installer_installs_verified_tools(release_server, tmp_path):
    files, base = release_server
    files.update(fake_releases())
    result = run_installer(base, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["installed helm 3.19.0", "installed helmfile 1.4.4",
                                          "installed helm_diff 3.13.0", "installed kubectl 1.34.4"]
    for name in ("helm", "helmfile", "kubectl"):
        assert os.access(tmp_path / "bin" / name, os.X_OK)
    assert (tmp_path / "plugins" / "helm-diff" / "plugin.yaml").read_text().startswith("name: diff")
    assert os.access(tmp_path / "plugins" / "helm-diff" / "bin" / "diff", os.X_OK)


def test_installer_refuses_a_download_that_does_not_match_the_published_checksum(release_server, tmp_path):
    files, base = release_server
    files.update(fake_releases())
    files["/helmfile/v1.4.4/helmfile_1.4.4_linux_amd64.tar.gz"] = tar_gz({"helmfile": script("echo tampered")})
    result = run_installer(base, tmp_path)
    assert result.returncode == 1
    assert re.search(r"helmfile: SHA-256 of \S+helmfile_1.4.4_linux_amd64.tar.gz is [0-9a-f]{64}, expected", result.stderr)
    assert not (tmp_path / "bin" / "helmfile").exists()
    assert "Traceback" not in result.stderr


def test_installer_uses_a_pinned_digest_instead_of_the_checksum_file(release_server, tmp_path):
    files, base = release_server
    releases = fake_releases()
    files.update(releases)
    good = sha(releases["/kubectl/v1.34.4/bin/linux/amd64/kubectl"])
    del files["/kubectl/v1.34.4/bin/linux/amd64/kubectl.sha256"]
    assert run_installer(base, tmp_path, "--kubectl-sha256", good.upper()).returncode == 0
    result = run_installer(base, tmp_path, "--kubectl-sha256", "0" * 64)
    assert result.returncode == 1 and "kubectl: SHA-256" in result.stderr


def test_installer_fails_when_a_tool_reports_another_version(release_server, tmp_path):
    files, base = release_server
    files.update(fake_releases(helm_reports="v3.18.0"))
    result = run_installer(base, tmp_path)
    assert result.returncode == 1
    assert "helm: installed binary does not report version 3.19.0: v3.18.0" in result.stderr


def test_installer_names_a_missing_download(release_server, tmp_path):
    files, base = release_server
    releases = fake_releases()
    del releases["/helm-diff/v3.13.0/helm-diff-linux-amd64.tgz"]
    files.update(releases)
    result = run_installer(base, tmp_path)
    assert result.returncode == 1
    assert "download of %s/helm-diff/v3.13.0/helm-diff-linux-amd64.tgz failed: HTTP Error 404" % base in result.stderr


def test_installer_rejects_a_version_with_a_leading_v(tmp_path):
    result = subprocess.run([sys.executable, INSTALLER, "--helm", "v3.19.0", "--helmfile", "1.4.4",
                             "--helm-diff", "3.13.0", "--kubectl", "1.34.4"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "--helm: give the version without a leading v, e.g. 3.19.0 (got 'v3.19.0')" in result.stderr
