"""Run a benchmark script with some of the package's module-level knobs set (A/B in one call).

The fast path's tuning knobs are module constants (``hyenadna.ops.columns.MIN_BLOCKS``,
``hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES``, ...), read when a kernel is built or a call is
dispatched. This sets them, then runs the script as ``python SCRIPT ARGS`` would, in the same
process. A knob must already exist (a typo is an error, not a new attribute), and its value is a
Python literal.

    python benchmarks/with_knobs.py --set hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES=1073741824 \\
        benchmarks/bench_operator.py --batches 1 --lengths 65536 --variants op_fast_stepgraph \\
        --out /tmp/keep
"""

from __future__ import annotations

import argparse
import ast
import importlib
import runpy
import sys
from pathlib import Path


def set_knob(assignment: str) -> tuple[str, object]:
    """Apply ``package.module.NAME=literal``; returns (dotted name, value)."""
    target, sep, text = assignment.partition("=")
    module_name, _, name = target.strip().rpartition(".")
    if not sep or not module_name or not name:
        raise SystemExit(f"with_knobs: {assignment!r} is not module.NAME=value")
    module = importlib.import_module(module_name)
    if not hasattr(module, name):
        raise SystemExit(f"with_knobs: {module_name} has no knob {name}")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise SystemExit(f"with_knobs: {text!r} (for {target}) is not a Python literal") from None
    setattr(module, name, value)
    return target, value


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=VALUE")
    ap.add_argument("script")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    for assignment in args.set:
        target, value = set_knob(assignment)
        print(f"with_knobs: {target} = {value!r}", flush=True)
    script = Path(args.script)
    sys.path.insert(0, str(script.resolve().parent))  # as `python SCRIPT` puts its folder first
    sys.argv = [str(script), *args.args]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
