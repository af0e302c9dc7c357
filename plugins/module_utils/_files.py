# This file is for internal use by the llmd.stack collection only.
"""Report files written the idempotent way: only when their content changes."""

import os
import tempfile

from ansible.module_utils.common.text.converters import to_bytes


def write_if_changed(module, path, content):
    """Write content to path (atomically, creating its directory) unless it is
    already there. True when it changed, or would in check mode."""
    data = to_bytes(content)
    if os.path.exists(path):
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    if module.check_mode:
        return True
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory)
    handle, tmp_path = tempfile.mkstemp(dir=directory, prefix=".llmd-")
    with os.fdopen(handle, "wb") as tmp:
        tmp.write(data)
    module.atomic_move(tmp_path, path)
    return True
