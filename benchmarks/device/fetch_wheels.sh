#!/usr/bin/env bash
# Downloads, on a machine with the package index, the wheels that the lent GPU machine lacks
# (its image has PyTorch and JAX with CUDA, numpy, scipy, pillow, matplotlib, h5py, absl-py
# and tqdm, but not Keras, and it reaches no index). They go to .whl/ (git-ignored), which
# the device tool carries: see benchmarks/device/gpu_tables.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "keras==3.15.1" "namex==0.1.0" "optree==0.20.0"
ls -l .whl
