"""Build the Cython kernels of cvxnn_fast.

Compiler directives are set once here. Set ``CVXNN_CYTHON_DEBUG=1`` in the
environment to build with bounds checking and negative-index wraparound turned
on (slow; for debugging kernels).
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CVXNN_CYTHON_DEBUG", "0") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

KERNELS = ["_operator", "_fista"]

extensions = [
    Extension(
        f"cvxnn_fast.{name}",
        [f"cvxnn_fast/{name}.pyx"],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
    for name in KERNELS
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
