"""Benchmark: the first deploy.yml on a fresh lab against the second
(idempotent) run and a --check run, side by side in one session.

    .venv/bin/python tests/integration/playbooks/bench_deploy.py [--keep-lab]

Starts a private lab (its own LLMD_LAB_DIR), so the first run installs
everything: CRDs, Istio, the stack, and waits for it. Prints a Markdown table.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)


def run(command, env):
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(command), (result.stdout + result.stderr)[-3000:]))
    return elapsed, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-lab", action="store_true", help="leave the private lab running")
    args = parser.parse_args()
    lab_dir = os.path.join(tempfile.mkdtemp(prefix="bench-deploy-"), "lab")
    env = dict(os.environ, LLMD_LAB_DIR=lab_dir, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    lab_up, _lab_output = run(["bash", "lab/lab.sh", "up"], env)
    with open(os.path.join(lab_dir, "env")) as handle:
        for line in handle:
            match = re.match(r"^export (\w+)='([^']*)'", line)
            if match:
                env[match.group(1)] = match.group(2)
    env["PATH"] = subprocess.run(["bash", "lab/build-tools.sh", "--print-bin"], cwd=REPO, capture_output=True,
                                 text=True, check=True).stdout.strip() + os.pathsep + env["PATH"]
    playbook = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "inventories/lab",
                "playbooks/deploy.yml"]
    rows = []
    try:
        for label, extra in (("first deploy (fresh lab)", []), ("second deploy (idempotent)", []),
                             ("--check after it", ["--check"])):
            elapsed, output = run(playbook + extra, env)
            ok, changed, failed = (int(g) for g in RECAP.search(output).groups())
            rows.append((label, elapsed, ok, changed))
    finally:
        if not args.keep_lab:
            subprocess.run(["bash", "lab/lab.sh", "down"], cwd=REPO, env=env, capture_output=True, check=False)
    first = rows[0][1]
    print("lab up: %.1f s" % lab_up)
    print("| run | wall time (s) | ratio to first | tasks ok | changed |")
    print("| --- | --- | --- | --- | --- |")
    for label, elapsed, ok, changed in rows:
        print("| %s | %.1f | %.2f | %d | %d |" % (label, elapsed, elapsed / first, ok, changed))


if __name__ == "__main__":
    main()
