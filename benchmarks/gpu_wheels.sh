#!/usr/bin/env bash
# Download, here (where the registry is reachable), the wheels the GPU machine may lack, for its
# Python 3.12 on x86_64 Linux, into build/wheels/ (git-ignored: carry it with the run, carry=["build/wheels"]). Never a torch:
# the GPU machine keeps its own. gpu_run.py installs from it only what does not import there.
#   benchmarks/gpu_wheels.sh pure     # pure-Python ones and kornia-rs (a few MiB); piq also needs torchvision
#   benchmarks/gpu_wheels.sh all      # also numpy, scipy, matplotlib, scikit-image, pillow (~90 MiB:
#                                     # over the 64 MiB a run can carry; use only what preflight reports missing)
set -euo pipefail
cd "$(dirname "$0")/.."
tier="${1:-pure}"
pure=(kornia-rs tqdm pytorch-msssim pytest pluggy iniconfig packaging kornia piq lazy-loader networkx imageio tifffile
      cycler pyparsing python-dateutil six fonttools)
binary=(numpy scipy matplotlib scikit-image pillow contourpy kiwisolver)
want=("${pure[@]}")
[ "$tier" = all ] && want+=("${binary[@]}")
.venv/bin/pip download --dest build/wheels --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any "${want[@]}"
du -sh build/wheels
