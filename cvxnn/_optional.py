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
