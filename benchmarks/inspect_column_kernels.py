"""Registers, spills and instruction mix of the four-step column kernels, compiled offline (no GPU).

Triton compiles ``fourstep._rfft4_cols_kernel`` and ``_irfft4_cols_kernel`` for sm_90a here, with
the arguments specialised as a real launch at width 256 and N1 = 32 specialises them (unit time
strides, 16-divisible pointers, strides and lengths), and the ``cuobjdump`` that Triton's
package carries reads back each build's resources and SASS. Per (kernel, block_j, num_warps):
registers, stack frame, SASS instructions, global loads and stores by width, barriers, tensor
core MMAs (the sin/cos are libdevice's accurate ones: FMA polynomials, with a table-driven slow
path for large angles that ``_angle``'s reduction keeps from running). What it cannot say is
how fast a build runs: that is ``tune_fourstep.py`` on a GPU. The Triton here may differ from
the GPU machine's, and so may its builds.

    python benchmarks/inspect_column_kernels.py --out inspect.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "0"  # compiled kernels, also where tests set the interpreter
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from hyenadna.ops import fourstep  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)
SASS_COUNTS = {  # name: regex over SASS instructions
    "ld.global 16B": r"\bLDG\.E\.128 ", "ld.global 8B": r"\bLDG\.E\.64 ",
    "ld.global <=4B": r"\bLDG\.E(\.U16|\.S16)? ",
    "ld.global.nc (sin/cos tables)": r"\bLDG\.E[.\w]*\.CONSTANT ",
    "st.global 16B": r"\bSTG\.E\.128 ", "st.global 8B": r"\bSTG\.E\.64 ",
    "st.global <=4B": r"\bSTG\.E(\.U16)? ", "barriers": r"\bBAR\.SYNC", "mma": r"\bHMMA\b",
}


def _signature(kernel: str) -> tuple:
    """(JIT function, argument types, constexprs): bf16 signals, complex64 spectra, L = 64k."""
    n, half = 1 << 17, 16
    shape = dict(N=n, N2=n // 32, HALF=half, ROWS=16)
    if kernel == "rfft":
        fn = fourstep._rfft4_cols_kernel
        types = {"out_ptr": "*fp32", "a_ptr": "*bf16", "b_ptr": "*bf16", "bias_ptr": "*bf16",
                 "C": "i32", "L": "i32", "scale": "fp32"}
        const = dict(shape, HAS_B=True, HAS_BIAS=False, ROUND=1, sa_l=1, sb_l=1)
    else:
        fn = fourstep._irfft4_cols_kernel
        types = {"q_ptr": "*fp32", "o1_ptr": "*bf16", "g1_ptr": "*bf16", "o2_ptr": "*bf16",
                 "g2_ptr": "*bf16", "C": "i32", "L": "i32", "scale": "fp32"}
        const = dict(shape, HAS_G1=True, HAS_O2=False, HAS_G2=False, so1_l=1, sg1_l=1, so2_l=1,
                     sg2_l=1)
    for name in fn.arg_names:  # the remaining strides
        types.setdefault(name, "i64")
    return fn, types, const


def build(kernel: str, block_j: int, num_warps: int, cuobjdump: Path, tmp: Path) -> dict:
    fn, types, const = _signature(kernel)
    const = dict(const, BJ=block_j)
    types = {k: ("constexpr" if k in const else t) for k, t in types.items()}
    # a launch specialises 16-divisible pointers, strides and lengths (the scale is a float)
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names)
             if name not in const and name != "scale"}
    compiled = triton.compile(ASTSource(fn=fn, signature=types, constexprs=const, attrs=attrs),
                              target=TARGET, options={"num_warps": num_warps})
    cubin = tmp / f"{kernel}_{block_j}_{num_warps}.cubin"
    cubin.write_bytes(compiled.asm["cubin"])
    usage = subprocess.run([cuobjdump, "--dump-resource-usage", cubin], capture_output=True,
                           text=True, check=True).stdout
    sass = subprocess.run([cuobjdump, "--dump-sass", cubin], capture_output=True, text=True,
                          check=True).stdout
    opcodes = re.findall(r"/\*[0-9a-f]{4,}\*/\s+(.*?);", sass)
    row = {"kernel": kernel, "block_j": block_j, "num_warps": num_warps,
           "registers": int(re.search(r"REG:(\d+)", usage).group(1)),
           "stack_bytes": int(re.search(r"STACK:(\d+)", usage).group(1)),
           "sass_instructions": len(opcodes)}
    for name, pattern in SASS_COUNTS.items():
        row[name] = sum(1 for op in opcodes if re.search(pattern, op))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-j", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--warps", type=int, nargs="+", default=[4])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kernel in ("rfft", "irfft"):
            for bj in args.block_j:
                for warps in args.warps:
                    rows.append(build(kernel, bj, warps, cuobjdump, Path(tmp)))
    cols = list(rows[0])
    print(f"Triton {triton.__version__}, sm_90a, N1 = 32, L = 64k (N2 = 4096), bf16 signals")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    args.out.write_text(json.dumps({"triton": triton.__version__, "target": "sm_90a",
                                    "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
