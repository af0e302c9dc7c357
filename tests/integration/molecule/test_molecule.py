"""The molecule scenarios (extensions/molecule) on the lab, so `make test` runs them.

Each scenario found there runs as `molecule test -s <scenario>` from the
repository root with the lab's environment. The test passes only when molecule
exits 0 and its recap shows every step this wrapper relies on (converge,
idempotence, verify, cleanup, destroy) executed successfully: a scenario whose
sequence lost a step fails here instead of passing with less coverage.
"""
import glob
import os
import re
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCENARIO_ROOT = os.path.join(REPO, "extensions", "molecule")
SCENARIOS = sorted(os.path.basename(os.path.dirname(path))
                   for path in glob.glob(os.path.join(SCENARIO_ROOT, "*", "molecule.yml")))
REQUIRED_STEPS = ("converge", "idempotence", "verify", "cleanup", "destroy")
# A scenario deploys two or three times, verifies and cleans up: 2-2.5 minutes on a quiet lab,
# 3-4.5 under load (docs/benchmarks.md).
SCENARIO_TIMEOUT = 1500
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def molecule_env(lab):
    venv_bin = os.path.dirname(sys.executable)
    return dict(lab.env,
                # molecule runs `ansible-playbook` from PATH: the project's venv first.
                PATH=venv_bin + os.pathsep + lab.env["PATH"],
                ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                HELM_PLUGINS=os.path.join(REPO, "lab", "helm-plugins"),
                NO_COLOR="1", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")


def executed_steps(output, scenario):
    """{step: [outcome, ...]} from molecule's live `[<scenario> > <step>] Executed: <outcome>` lines.

    Only the live lines count: the DETAILS recap at the end can call a failed
    idempotence step "Successful" (molecule 26.10), so it is not read.
    """
    steps = {}
    for step, outcome in re.findall(r"\[%s > (\w+)\] Executed: (\w+)" % re.escape(scenario), ANSI.sub("", output)):
        steps.setdefault(step, []).append(outcome)
    return steps


def failure_excerpt(output, after=30):
    """What a reader needs from a failed run: each failed task with what follows it, and the end."""
    lines = output.splitlines()
    excerpt = []
    for number, line in enumerate(lines):
        if re.match(r"^\W*(fatal|failed):|^CRITICAL Idempotence", line):
            excerpt += ["..."] + lines[max(0, number - 3):number + after]
    return "\n".join(excerpt + ["...", "(end of output)"] + lines[-40:])


def test_scenarios_are_found():
    assert {"base", "pd", "preset"} <= set(SCENARIOS), SCENARIOS


@pytest.mark.timeout(SCENARIO_TIMEOUT + 60)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(lab, scenario):
    molecule = os.path.join(os.path.dirname(sys.executable), "molecule")
    started = time.monotonic()
    run = subprocess.run([molecule, "test", "--scenario-name", scenario], cwd=REPO, env=molecule_env(lab),
                         capture_output=True, text=True, timeout=SCENARIO_TIMEOUT, check=False)
    took = time.monotonic() - started
    output = ANSI.sub("", run.stdout + run.stderr)
    steps = executed_steps(output, scenario)
    assert run.returncode == 0, "molecule test -s %s failed (rc %d, %.0fs), steps %s:\n%s" % (
        scenario, run.returncode, took, steps, failure_excerpt(output))
    for step in REQUIRED_STEPS:
        assert steps.get(step) and set(steps[step]) == {"Successful"}, (
            "step %s of scenario %s: %s (steps %s)" % (step, scenario, steps.get(step, "did not run"), steps))
