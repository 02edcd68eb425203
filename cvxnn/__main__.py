"""``python -m cvxnn`` runs the ``cvxnn`` command (see :mod:`cvxnn.cli.commands`)."""

import sys

from cvxnn.cli.commands import main

sys.exit(main())
