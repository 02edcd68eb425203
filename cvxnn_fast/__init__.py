"""Compiled solvers for the convex programs built by :mod:`cvxnn`.

``fast_solve`` is imported lazily so that :mod:`cvxnn` can use the compiled
kernels of this package without an import cycle.
"""

__all__ = ["fast_solve"]


def __getattr__(name):
    if name == "fast_solve":
        from cvxnn_fast.solve import fast_solve

        return fast_solve
    raise AttributeError(f"module 'cvxnn_fast' has no attribute {name!r}")
