"""Optional dependencies, imported on first use with an actionable error."""

import importlib


def optional_import(module, purpose, extra):
    """Import ``module`` or raise ImportError saying how to install it.

    ``purpose`` completes "... needs <package>" (e.g. "plotting"); ``extra``
    is the cvxnn extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(
            f"{purpose} needs {package}: pip install {package} (or cvxnn[{extra}])."
        ) from exc


class LazyModule:
    """A module imported on first attribute access (``cvxpy``: 0.4 s of a
    0.6 s ``import cvxnn``, needed only by the CVXPY backend, the ReLU
    lam_max programs, the decomposition's exact split and model-file
    checks)."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self):
        return f"<lazy module {self._name!r}>"


cvxpy = LazyModule("cvxpy")
