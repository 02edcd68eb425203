"""``python -m cvxnn`` runs the ``cvxnn`` command (see :mod:`cvxnn.cli`)."""

import sys

from cvxnn.cli import main

sys.exit(main())
