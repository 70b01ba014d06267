#!/usr/bin/env bash
# Fetch the wheels gpu_session.sh installs on the device machine (its image has torch, lightning,
# h5py, click, scikit-learn, matplotlib and triton, but not these) into .whl/, git-ignored and
# passed in the device call's carry. Python 3.12 on x86_64, as on that image.
# With a git ref as argument it also puts that commit's package in .old_head/ (git-ignored, carried
# too), the "head" side of gpu_session.sh's A/B phases: `bash benchmarks/gpu_wheels.sh 552c0db`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl pyfaidx biopython einops
ls .whl
if [ $# -gt 0 ]; then
    grep -qx "/.old_head/" .git/info/exclude || echo "/.old_head/" >> .git/info/exclude
    rm -rf .old_head && mkdir .old_head && git archive "$1" hyenadna | tar -x -C .old_head
    echo ".old_head/ = hyenadna at $(git rev-parse --short "$1")"
fi
