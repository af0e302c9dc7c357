"""Run the collection's playbooks against the lab, as a user would."""
import contextlib
import json
import os
import re
import subprocess
import sys
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class PlaybookRun:
    def __init__(self, completed):
        self.rc = completed.returncode
        self.output = completed.stdout + completed.stderr
        match = RECAP.search(self.output)
        self.ok, self.changed, self.unreachable, self.failed = (
            tuple(int(group) for group in match.groups()) if match else (0, 0, 0, 1))

    def __repr__(self):
        return "PlaybookRun(rc=%d, changed=%d, failed=%d)" % (self.rc, self.changed, self.failed)

    def tail(self, lines=60):
        return "\n".join(self.output.splitlines()[-lines:])


@pytest.fixture(scope="session")
def run_playbook(lab, tmp_path_factory):
    """run_playbook(name, extra_vars, *args, env_update=, env_remove=) -> PlaybookRun, in the lab's environment."""
    workdir = tmp_path_factory.mktemp("playbooks")
    env = dict(lab.env, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", HELM_PLUGINS=os.path.join(REPO, "lab", "helm-plugins"))
    # The ansible-playbook of the Python running the tests (the project's .venv).
    playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

    def run(playbook, extra_vars=None, *args, timeout=1200, env_update=None, env_remove=()):
        vars_file = workdir / ("vars-%s.json" % uuid.uuid4().hex[:8])
        vars_file.write_text(json.dumps(extra_vars or {}))
        command = [playbook_bin, "-i", os.path.join(REPO, "inventories", "lab"),
                   os.path.join(REPO, "playbooks", playbook), "-e", "@%s" % vars_file] + list(args)
        run_env = dict((k, v) for k, v in dict(env, **(env_update or {})).items() if k not in env_remove)
        completed = subprocess.run(command, cwd=REPO, env=run_env, capture_output=True, text=True,
                                   timeout=timeout, check=False)
        return PlaybookRun(completed)

    return run


@pytest.fixture(scope="session")
def deploy_stack(run_playbook):
    """deploy_stack(prefix, postfix): a context manager that deploys a stack into
    a fresh namespace `<prefix>-xxxxx`, yields (extra vars, the deploy run) and
    removes it, namespace included, with cleanup.yml."""
    @contextlib.contextmanager
    def deployed(prefix, postfix):
        extra = {"stack_namespace": "%s-%s" % (prefix, uuid.uuid4().hex[:5]), "stack_release_postfix": postfix}
        deploy = run_playbook("deploy.yml", extra)
        assert deploy.rc == 0, deploy.tail()
        yield extra, deploy
        cleanup = run_playbook("cleanup.yml", dict(extra, cleanup_namespace=True))
        assert cleanup.rc == 0, cleanup.tail()

    return deployed
