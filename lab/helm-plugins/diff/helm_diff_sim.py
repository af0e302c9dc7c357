#!/usr/bin/env python3
"""LAB ONLY: a stand-in for `helm diff upgrade`, enough for helmfile diff/apply.

The desired manifest comes from `helm upgrade --install --dry-run=server -o json`
with the same chart, version, namespace and values; the current one from
`helm get manifest`. Exit codes follow helm-diff: with --detailed-exitcode, 2
means "changes", 0 "no changes"; 1 is an error.
"""
import difflib
import json
import os
import subprocess
import sys

VERSION = "3.13.0+lab.sim"

# helm-diff flags that take a value, and those passed on to `helm upgrade`.
VALUE_FLAGS = {
    "--namespace", "-n", "--values", "-f", "--set", "--set-string", "--set-file",
    "--set-json", "--version", "--kube-context", "--context", "--output",
    "--suppress", "--suppress-output-line-regex", "--post-renderer",
    "--post-renderer-args", "--repo", "--api-versions", "-a", "--kube-version",
    "--kubeconfig", "--timeout",
}
PASS_TO_HELM = {
    "--values", "-f", "--set", "--set-string", "--set-file", "--set-json",
    "--version", "--kube-context", "--post-renderer", "--post-renderer-args",
    "--repo", "--kubeconfig",
}
BOOLEAN_FLAGS = {
    "--allow-unreleased", "--detailed-exitcode", "--reset-values", "--reuse-values",
    "--reset-then-reuse-values", "--suppress-secrets", "--no-color", "--color",
    "--include-tests", "--three-way-merge", "--take-ownership", "--skip-schema-validation",
    "--disable-validation", "--disable-openapi-validation", "--enable-dns",
    "--normalize-manifests", "--devel", "--strip-trailing-cr", "--insecure-skip-tls-verify",
    "--show-secrets", "--show-secrets-decoded", "--no-hooks", "--debug",
}
PASS_BOOLEAN = {"--skip-schema-validation", "--devel", "--insecure-skip-tls-verify", "--enable-dns"}


def parse(argv):
    """Split `diff upgrade` arguments into positionals, helm flags and options."""
    positional, helm_flags, opts = [], [], {"namespace": os.environ.get("HELM_NAMESPACE", "default")}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, _, inline = arg.partition("=")
        if name in VALUE_FLAGS:
            if inline:
                value = inline
            else:
                i += 1
                if i >= len(argv):
                    raise SystemExit("helm-diff (lab simulator): %s needs a value" % name)
                value = argv[i]
            if name in ("--namespace", "-n"):
                opts["namespace"] = value
            elif name in PASS_TO_HELM:
                helm_flags += [name, value]
        elif name in BOOLEAN_FLAGS:
            opts[name] = True
            if name in PASS_BOOLEAN:
                helm_flags.append(name)
        elif arg.startswith("-"):
            raise SystemExit("helm-diff (lab simulator): flag %s is not supported" % arg)
        else:
            positional.append(arg)
        i += 1
    return positional, helm_flags, opts


def documents(manifest):
    """Rendered documents without helm's `# Source:` comments, in a stable order."""
    docs, current = [], []
    for line in manifest.splitlines():
        if line.strip() == "---":
            docs.append("\n".join(current).strip())
            current = []
        elif not line.startswith("# Source:"):
            current.append(line.rstrip())
    docs.append("\n".join(current).strip())
    return sorted(d for d in docs if d)


def redact(docs):
    return ["kind: Secret (content suppressed)" if "\nkind: Secret" in "\n" + d else d for d in docs]


def helm(*args):
    return subprocess.run([os.environ.get("HELM_BIN", "helm")] + list(args),
                          capture_output=True, text=True, check=False)


def diff_upgrade(argv):
    positional, helm_flags, opts = parse(argv)
    if len(positional) != 2:
        raise SystemExit("helm-diff (lab simulator): usage: diff upgrade RELEASE CHART [flags]")
    release, chart = positional
    namespace = opts["namespace"]
    rendered = helm("upgrade", "--install", release, chart, "--namespace", namespace,
                    "--dry-run=server", "--output", "json", *helm_flags)
    if rendered.returncode != 0:
        sys.stderr.write(rendered.stderr)
        return 1
    desired = documents(json.loads(rendered.stdout).get("manifest", ""))
    deployed = helm("get", "manifest", release, "--namespace", namespace)
    if deployed.returncode != 0 and "not found" not in deployed.stderr:
        sys.stderr.write(deployed.stderr)
        return 1
    current = documents(deployed.stdout) if deployed.returncode == 0 else []
    if desired == current:
        return 0
    before, after = current, desired
    if opts.get("--suppress-secrets"):
        before, after = redact(before), redact(after)
    sys.stdout.write("%s, %s (lab helm-diff simulator) has changes:\n" % (namespace, release))
    sys.stdout.writelines(line + "\n" for line in difflib.unified_diff(
        "\n---\n".join(before).splitlines(), "\n---\n".join(after).splitlines(),
        "deployed", "upgrade", lineterm=""))
    return 2 if opts.get("--detailed-exitcode") else 0


def main(argv):
    if argv[:1] == ["version"]:
        print(VERSION)
        return 0
    if argv[:1] == ["upgrade"]:
        return diff_upgrade(argv[1:])
    sys.stderr.write("helm-diff (lab simulator): only 'upgrade' and 'version' are implemented\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
