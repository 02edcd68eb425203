"""From a gated ReLU solution to a ReLU network of the same predictions.

``decompose`` (in :mod:`cvxnn.decomposition.decompose`) splits each gated
neuron into two cone-feasible ReLU neurons; :mod:`cvxnn.decomposition.cones`
holds the per-pattern cone geometry (least-distance splits, repair).
"""

from cvxnn.decomposition.decompose import (
    DecompositionReport,
    DecompositionWarning,
    decompose,
)

__all__ = ["DecompositionReport", "DecompositionWarning", "decompose"]
