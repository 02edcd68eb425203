"""Model files: solutions, networks and fitted estimators as checked .npz archives.

* :mod:`cvxnn.io.files`: ``save``/``load`` and their per-kind variants;
* :mod:`cvxnn.io.archive`: the archive (JSON header, arrays, checksums);
* :mod:`cvxnn.io.checks`: what a file must satisfy before anything is built
  from it (arrays, dtypes, shapes, finiteness, the objective recomputed);
* :mod:`cvxnn.io.estimator_checks`: what an estimator's file must satisfy
  besides (settings, by the estimators' own checks; fitted attributes).

Saving runs the same checks (all but the objective) first: a file they would
refuse is not written.

A damaged file raises :class:`ModelFileError` naming the file and the problem.
"""

from cvxnn.io.files import (
    FORMAT_VERSION,
    HEADER,
    KINDS,
    ModelFileError,
    load,
    load_metadata,
    load_model,
    load_network,
    load_solution,
    save,
    save_model,
    save_network,
    save_solution,
    solution_from_parts,
    solution_parts,
)

__all__ = ["FORMAT_VERSION", "HEADER", "KINDS", "ModelFileError", "load",
           "load_metadata", "load_model", "load_network", "load_solution", "save",
           "save_model", "save_network", "save_solution", "solution_from_parts",
           "solution_parts"]
