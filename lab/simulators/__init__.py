"""Lab simulators: stand-ins for parts of a real cluster that cannot run on the
lab machine (no GPU, no containers). Lab-only; never used outside lab/.

lab/simulators/run.py imports each controller as ``simulators.<name>``; modules
here share helpers through relative imports (``from . import common``).
"""
