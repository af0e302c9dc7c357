"""Install the pinned client tools into an execution environment image.

Run by execution-environment.yml (append_final) as root inside the image build:

    $PYCMD ee_install_client_tools.py --helm 3.19.0 --helmfile 1.4.4 \
        --helm-diff 3.13.0 --kubectl 1.34.4

Every archive is checked against a SHA-256 digest before anything is extracted:
the digest given with --<tool>-sha256 when set, otherwise the checksum file the
project publishes with the same release. After installing, each tool is run and
must report the pinned version. Standard library only: the EE base image may
have no curl, tar or sha256sum. Base URLs can point at a mirror (air-gapped
builds).
"""
import argparse
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import urllib.request

DEFAULT_BASE_URLS = {
    "helm": "https://get.helm.sh",
    "helmfile": "https://github.com/helmfile/helmfile/releases/download",
    "helm_diff": "https://github.com/databus23/helm-diff/releases/download",
    "kubectl": "https://dl.k8s.io/release",
}
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class InstallError(Exception):
    """A download, checksum or version check failed; the message says which."""


def release_files(tool, version, arch, base_url):
    """Return (archive URL, checksum-file URL, archive name) of one tool release."""
    base = base_url.rstrip("/")
    if tool == "helm":
        name = "helm-v%s-linux-%s.tar.gz" % (version, arch)
        return "%s/%s" % (base, name), "%s/%s.sha256sum" % (base, name), name
    if tool == "helmfile":
        name = "helmfile_%s_linux_%s.tar.gz" % (version, arch)
        folder = "%s/v%s" % (base, version)
        return "%s/%s" % (folder, name), "%s/helmfile_%s_checksums.txt" % (folder, version), name
    if tool == "helm_diff":
        name = "helm-diff-linux-%s.tgz" % arch
        folder = "%s/v%s" % (base, version)
        return "%s/%s" % (folder, name), "%s/helm-diff_%s_checksums.txt" % (folder, version), name
    if tool == "kubectl":
        folder = "%s/v%s/bin/linux/%s" % (base, version, arch)
        return "%s/kubectl" % folder, "%s/kubectl.sha256" % folder, "kubectl"
    raise InstallError("unknown tool %r" % tool)


def digest_from_checksum_file(text, name):
    """Find the digest of `name` in a checksum file.

    Understands `<digest>  <name>` lines (sha256sum, goreleaser) and a file that
    holds one bare digest (kubectl's .sha256).
    """
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0]) == 1:
        return lines[0][0].lower()
    for fields in lines:
        if len(fields) >= 2 and fields[-1].lstrip("*") == name:
            return fields[0].lower()
    raise InstallError("checksum file has no entry for %s" % name)


def fetch(url, timeout):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # nosec: pinned release URLs
            return answer.read()
    except OSError as exc:
        raise InstallError("download of %s failed: %s" % (url, exc))


def verified_download(tool, version, arch, base_url, sha256, timeout):
    url, checksum_url, name = release_files(tool, version, arch, base_url)
    payload = fetch(url, timeout)
    expected = sha256.lower() if sha256 else digest_from_checksum_file(
        fetch(checksum_url, timeout).decode("utf-8", "replace"), name)
    found = hashlib.sha256(payload).hexdigest()
    if found != expected:
        raise InstallError("%s: SHA-256 of %s is %s, expected %s" % (tool, url, found, expected))
    return payload


def extract_member(archive, member_name):
    """Return the bytes of one regular file of a tar.gz archive."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        try:
            member = tar.getmember(member_name)
        except KeyError:
            raise InstallError("archive has no %s" % member_name)
        if not member.isfile():
            raise InstallError("%s in the archive is not a regular file" % member_name)
        return tar.extractfile(member).read()


def write_executable(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)
    os.chmod(path, 0o755)


def install_helm_diff(archive, plugins_dir):
    """Unpack the helm-diff plugin (diff/plugin.yaml, diff/bin/diff) as <plugins_dir>/helm-diff."""
    target = os.path.join(plugins_dir, "helm-diff")
    if os.path.isdir(target):
        shutil.rmtree(target)
    write_executable(os.path.join(target, "bin", "diff"), extract_member(archive, "diff/bin/diff"))
    with open(os.path.join(target, "plugin.yaml"), "wb") as handle:
        handle.write(extract_member(archive, "diff/plugin.yaml"))


def installed_version_output(tool, bin_dir, plugins_dir):
    commands = {
        "helm": [os.path.join(bin_dir, "helm"), "version", "--template", "{{.Version}}"],
        "helmfile": [os.path.join(bin_dir, "helmfile"), "--version"],
        "helm_diff": [os.path.join(bin_dir, "helm"), "diff", "version"],
        "kubectl": [os.path.join(bin_dir, "kubectl"), "version", "--client"],
    }
    env = dict(os.environ, HELM_PLUGINS=plugins_dir)
    result = subprocess.run(commands[tool], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if result.returncode != 0:
        raise InstallError("%s: `%s` exited %d: %s" % (
            tool, " ".join(commands[tool]), result.returncode, result.stdout.strip()))
    return result.stdout


def install(options):
    arch = ARCHES.get(options.arch or platform.machine())
    if arch is None:
        raise InstallError("unsupported architecture %r (amd64 and arm64 are)" % (options.arch or platform.machine()))
    pins = {"helm": options.helm, "helmfile": options.helmfile,
            "helm_diff": options.helm_diff, "kubectl": options.kubectl}
    for tool, version in pins.items():
        payload = verified_download(tool, version, arch, getattr(options, tool + "_base_url"),
                                    getattr(options, tool + "_sha256"), options.timeout)
        if tool == "helm":
            write_executable(os.path.join(options.bin_dir, "helm"),
                             extract_member(payload, "linux-%s/helm" % arch))
        elif tool == "helmfile":
            write_executable(os.path.join(options.bin_dir, "helmfile"), extract_member(payload, "helmfile"))
        elif tool == "helm_diff":
            install_helm_diff(payload, options.helm_plugins)
        else:
            write_executable(os.path.join(options.bin_dir, "kubectl"), payload)
    # Installed tools must say they are the pinned versions (helm-diff needs helm first).
    for tool, version in pins.items():
        output = installed_version_output(tool, options.bin_dir, options.helm_plugins)
        if version not in output:
            raise InstallError("%s: installed binary does not report version %s: %s" % (tool, version, output.strip()))
        sys.stdout.write("installed %s %s\n" % (tool, version))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    for tool in ("helm", "helmfile", "helm_diff", "kubectl"):
        flag = tool.replace("_", "-")
        parser.add_argument("--" + flag, dest=tool, required=True, metavar="VERSION",
                            help="%s version, without a leading v" % flag)
        parser.add_argument("--%s-sha256" % flag, dest=tool + "_sha256", default="",
                            help="expected SHA-256 of the %s download (default: the published checksum file)" % flag)
        parser.add_argument("--%s-base-url" % flag, dest=tool + "_base_url", default=DEFAULT_BASE_URLS[tool],
                            help="release download base URL (a mirror for air-gapped builds)")
    parser.add_argument("--bin-dir", default="/usr/local/bin")
    parser.add_argument("--helm-plugins", default="/usr/local/share/helm/plugins",
                        help="helm plugins directory; the image sets HELM_PLUGINS to it")
    parser.add_argument("--arch", default="", help="amd64 or arm64 (default: this machine's)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per download")
    options = parser.parse_args(argv)
    for tool in ("helm", "helmfile", "helm_diff", "kubectl"):
        value = getattr(options, tool)
        if not value or value.startswith("v"):
            parser.error("--%s: give the version without a leading v, e.g. 3.19.0 (got %r)"
                         % (tool.replace("_", "-"), value))
    return options


def main(argv=None):
    options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        install(options)
    except InstallError as exc:
        sys.stderr.write("ee_install_client_tools: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
