"""Stand-in for get-pip.py, used by tests/sanity/run.sh.

ansible-test bootstraps pip in its virtual environments with a get-pip.py it
downloads from ci-files.testing.ansible.com, which build machines without
general internet access cannot reach; PyPI they can. This bootstraps pip with
the interpreter's own ensurepip, then installs what ansible-test asked for
(pip==<version> ...) from PyPI.
"""
import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")

# ensurepip blanks the pip configuration of this process; pip then runs with the caller's.
environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=environment))
