"""Build the Cython kernels of cvxnn_fast.

Compiler directives are set once here. Set ``CVXNN_CYTHON_DEBUG=1`` in the
environment to build with bounds checking and negative-index wraparound turned
on (slow; for debugging kernels).

GCC and Clang also get the parts of -ffast-math that let the elementwise
passes vectorize (sums may be reassociated, no errno, no traps, no signed
zeros) but not -ffinite-math-only: the kernels test for NaN and infinity.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("CVXNN_CYTHON_DEBUG", "0") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# Compiled kernels, as module paths. The masked operator belongs to the front
# end (cvxnn.core), which the solvers of cvxnn_fast build on.
KERNELS = ["cvxnn.core._operator", "cvxnn_fast.fista._fista",
           "cvxnn_fast.interior._blocks"]
VECTORIZE = ["-fno-math-errno", "-fno-trapping-math", "-fassociative-math",
             "-fno-signed-zeros"]


class BuildExt(build_ext):
    """Adds VECTORIZE for GCC-compatible compilers (not MSVC), unless debugging."""

    def build_extensions(self):
        if self.compiler.compiler_type == "unix" and not DEBUG:
            for ext in self.extensions:
                ext.extra_compile_args = ext.extra_compile_args + VECTORIZE
        super().build_extensions()


extensions = [
    Extension(
        name,
        [name.replace(".", "/") + ".pyx"],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
    for name in KERNELS
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES),
      cmdclass={"build_ext": BuildExt})
