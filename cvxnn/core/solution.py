"""The solution type shared by every backend, CVXPY-based or compiled."""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from cvxnn.core.certificates import certificate as compute_certificate
from cvxnn.core.network import network_from_weights


@dataclass
class Solution:
    """Weights, status and certificate of one solve.

    Build it with :meth:`from_weights`, which computes ``objective`` with
    :meth:`Problem.objective` and ``certificate`` with
    :func:`cvxnn.core.certificates.certificate`, so that any two solutions of one
    problem are compared by the same code.

    Attributes
    ----------
    status : CVXPY status string ("optimal", "optimal_inaccurate", ...).
    objective : convex objective at the returned weights (nan if none).
    U : (n_outputs, P, d) prediction weights (V - W for ReLU), None on failure.
    V, W : ReLU blocks, None for gated ReLU.
    solver : name of the solver that produced it.
    solve_time : wall seconds, setup included.
    certificate : :class:`cvxnn.core.certificates.Certificate` or None on failure.
    n_iter : iterations, when the solver reports them.
    history : dict of arrays (e.g. time, objective, optimality) for plotting.
    multipliers : ReLU cone multipliers ``(lam_V, lam_W)``, when known.
    info : solver-specific extras (setup time, solver's own status, ...).
    message : why a solve failed or stopped early, or why a CVXPY solver's
        "optimal" is not backed by the certificate; "" otherwise.
    """

    problem: object
    status: str
    objective: float
    U: np.ndarray | None
    V: np.ndarray | None
    W: np.ndarray | None
    solver: str
    solve_time: float
    certificate: object
    n_iter: int | None = None
    history: dict = field(default_factory=dict)
    multipliers: tuple | None = None
    info: dict = field(default_factory=dict)
    message: str = ""

    @classmethod
    def from_weights(cls, problem, *, status, solver, solve_time, U=None, V=None,
                     W=None, multipliers=None, certificate=None, **extra):
        """A solution at the given weights, objective and certificate computed
        here (``certificate``: that of exactly these weights and multipliers,
        where the caller has it already)."""
        blocks = problem.blocks(U, V, W)
        cert = certificate or compute_certificate(problem, **blocks, **(
            {"multipliers": multipliers} if "V" in blocks else {}))
        U_model = problem.formulation.combine(blocks)
        return cls(problem=problem, status=status, objective=cert.objective,
                   U=U_model, V=blocks.get("V"), W=blocks.get("W"), solver=solver,
                   solve_time=solve_time, certificate=cert, multipliers=multipliers,
                   **extra)

    @classmethod
    def failed(cls, problem, *, status, solver, solve_time, message, **extra):
        """A solve that produced no weights: status and message say why."""
        return cls(problem=problem, status=status, objective=float("nan"), U=None,
                   V=None, W=None, solver=solver, solve_time=solve_time,
                   certificate=None, message=message, **extra)

    @property
    def blocks(self):
        names = self.problem.formulation.block_names
        return {name: getattr(self, name) for name in names}

    @cached_property
    def network(self):
        """The equivalent non-convex two-layer network (zero blocks dropped)."""
        if self.U is None:
            raise ValueError(f"this solve failed ({self.status}): there is no network.")
        return network_from_weights(self.problem, self.blocks)

    def predict(self, X):
        """Predictions (n_samples, n_outputs) of the trained network on raw inputs.

        On the training data they equal the convex model's predictions where
        the weights satisfy the cones (gated ReLU always; ReLU at
        ``certificate.cone_violation == 0``). A ReLU point that violates them
        (an unfinished solve) is not a network: each violating row's neuron
        is cut at zero, so predictions differ by up to that violation."""
        return self.network.predict(X)

    @property
    def n_active(self):
        """Number of neurons of the network (non-zero blocks)."""
        return self.network.n_neurons

    def __repr__(self):
        cert = self.certificate.summary() if self.certificate is not None else "none"
        return (f"Solution(status={self.status!r}, solver={self.solver!r}, "
                f"objective={self.objective:.8g}, solve_time={self.solve_time:.3g}s, "
                f"certificate=[{cert}])")
