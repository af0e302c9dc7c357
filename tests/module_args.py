"""patch_module_args for every ansible-core the tests run on (the helper
arrived in ansible.module_utils.testing with 2.19)."""
import json

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    from contextlib import contextmanager
    from unittest import mock

    from ansible.module_utils import basic

    @contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()):
            yield

__all__ = ["patch_module_args", "run_module"]


def run_module(main, args):
    """Run a module's main() with args in-process; its JSON result as a dict."""
    import contextlib
    import io

    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        try:
            main()
        except SystemExit:
            pass
    return json.loads(out.getvalue())
