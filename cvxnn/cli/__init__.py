"""The ``cvxnn`` command: ``fit``, ``predict``, ``compare`` (see ``cvxnn --help``).

:mod:`cvxnn.cli.commands` parses the arguments and runs each command;
:mod:`cvxnn.cli.tables` reads the CSV/NPY/NPZ data files they take.
"""

from cvxnn.cli.commands import main

__all__ = ["main"]
