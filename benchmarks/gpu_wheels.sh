#!/bin/sh
# The wheels benchmarks/gpu.py needs on the GPU machine beyond what its image holds
# (pydantic and its parts, array-api-compat, tomli-w; NumPy, SciPy, Numba, PyArrow,
# PyYAML and CuPy are there), for its Python 3.12, into .whl/ (ignored by git). Run here,
# in the repository's root; the device command in benchmarks/gpu.py's docstring installs
# them there. The versions are those this project is tested with.
set -eu
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
    typing-extensions==4.16.0 array-api-compat==1.16.0 tomli-w==1.2.0
ls -l .whl
