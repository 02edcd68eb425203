r"""Augmented Lagrangian method for the ReLU program.

For x = (V, W) and cone values ``c(x) = (2 D - 1) * (X @ x^T) >= 0`` with
multipliers ``mult >= 0`` and penalty ``rho``, each outer step minimizes

.. math::
    L_\rho(x) = F(x)
    + \frac{1}{2\rho}\sum \big(\max(0, m - \rho c(x))^2 - m^2\big)

with the compiled R-FISTA loop (warm-started at the previous solution, momentum
reset), then updates

* multipliers: the first-order rule ``mu = max(0, mult - rho c(x))``,
  extrapolated as in Nesterov's method,
  ``mult <- max(0, mu_k + (t_k - 1) / t_{k+1} (mu_k - mu_{k-1}))``, with the
  momentum dropped (``t = 1``) after any outer step whose cone violation is
  larger than the previous one (the safeguard);
* penalty: fixed at ``rho = RHO_START * L_data / ||X||_2^2``, which puts the
  penalty's curvature (at most ``rho ||X||^2`` per neuron) at a few times the
  data fit's Lipschitz constant ``L_data`` (estimated by power iteration);
* subproblem tolerance (on the relative gradient mapping): starts at 1e-2
  and follows the violation,
  ``inner_tol <- max(INNER_TOL_FLOOR * tol, min(inner_tol, 0.1 * violation))``.

The method stops only when, at one point, the relative duality gap (or KKT
residual when lam = 0) built with the multipliers ``max(0, mult - rho c(x))``
is below ``tol`` *and* the cone violation is below ``cone_tol``: the compiled
loop tests this at every inner iteration, and at scheduled pauses the point
is also polished (:mod:`cvxnn_fast.common.polish`) and judged by
:mod:`cvxnn.core.certificates`. With lam > 0 the gap is limited by the radial
residual of the non-zero neurons divided by lam, so the floor of the
subproblem tolerance is far below ``tol``. Why this schedule, and the
schedules measured against it: docs/design/augmented-lagrangian.md.
"""

import numpy as np

from cvxnn.core.certificates import certificate
from cvxnn.core.status import INTERRUPTED
from cvxnn_fast.common.polish import Polisher
from cvxnn_fast.common.run import Result
from cvxnn_fast.fista import solver as fista

K = fista.K
RHO_START = 4.0
INNER_TOL_START = 1e-2
INNER_TOL_PER_VIOLATION = 0.1
INNER_TOL_FLOOR = 1e-4


def _signs(problem):
    """(2 D - 1) as (n, 1, P), broadcast over the 2 * n_outputs blocks of Z."""
    return (2.0 * problem.patterns - 1.0).astype(problem.dtype)[:, None, :]


def _squared_norm(X, iterations=20):
    """Largest eigenvalue of X^T X by power iteration (seeded)."""
    v = np.random.default_rng(0).standard_normal(X.shape[1])
    value = 1.0
    for _ in range(iterations):
        v = X.T @ (X @ v)
        value = float(np.linalg.norm(v))
        if value == 0:
            return 1.0
        v /= value
    return value


def _split(problem, x):
    c, P, d = problem.weight_shape
    return {"V": x[: c * P].reshape(c, P, d).copy(),
            "W": x[c * P:].reshape(c, P, d).copy()}


def _multipliers_out(problem, mult):
    n, (c, P, _) = problem.n_samples, problem.weight_shape
    return (np.ascontiguousarray(mult[:, : c * P].reshape(n, c, P)),
            np.ascontiguousarray(mult[:, c * P:].reshape(n, c, P)))


def _multipliers_in(problem, multipliers):
    n, (c, P, _) = problem.n_samples, problem.weight_shape
    mult = np.zeros((n, 2 * c * P), problem.dtype)
    if multipliers is not None:
        mult[:, : c * P] = np.asarray(multipliers[0]).reshape(n, c * P)
        mult[:, c * P:] = np.asarray(multipliers[1]).reshape(n, c * P)
        np.maximum(mult, 0, out=mult)
    return mult


class Schedule:
    """Multipliers, penalty and subproblem tolerance across outer iterations."""

    def __init__(self, problem, mult, rho, tol):
        self.signs = _signs(problem)
        self.mult, self.plain = mult, mult.copy()
        self.rho = rho
        self.tol, self.inner_tol = tol, INNER_TOL_START
        self.t, self.previous_violation, self.n_outer = 1.0, np.inf, 0

    def shifted(self, Z):
        """max(0, m - rho c(x)): the multipliers the products Z of x imply."""
        n, P = Z.shape[0], self.signs.shape[2]
        cones = (self.rho * self.signs * Z.reshape(n, -1, P)).reshape(n, -1)
        return np.maximum(self.mult - cones, 0)

    def update(self, Z, violation):
        """One outer step after a subproblem solved at products Z."""
        self.n_outer += 1
        new = self.shifted(Z)
        if violation > self.previous_violation:
            self.t = 1.0  # safeguard: no extrapolation after a worse violation
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * self.t**2))
        np.maximum(new + (self.t - 1.0) / t_next * (new - self.plain), 0,
                   out=self.mult)
        self.plain, self.t = new, t_next
        self.previous_violation = violation
        self.inner_tol = max(self.tol * INNER_TOL_FLOOR,
                             min(self.inner_tol, INNER_TOL_PER_VIOLATION * violation))


def _tighten(target, tol, cone_tol, cert):
    """True where ``cert`` meets tol and cone_tol; else tighten the loop's
    ``target`` past what it missed by, and False."""
    if cert.satisfied(tol, cone_tol):
        return True
    if cert.optimality > tol:
        target["tol"] *= min(0.5, tol / cert.optimality)
    if cert.cone_violation > cone_tol:
        target["cone_tol"] *= min(0.5, cone_tol / cert.cone_violation)
    return False


def solve(problem, blocks, multipliers, tol, cone_tol, max_iter, monitor):
    """Run the method; returns an :class:`~cvxnn_fast.common.run.Result`."""
    c, P, d = problem.weight_shape
    x0 = np.vstack([blocks["V"].reshape(c * P, d), blocks["W"].reshape(c * P, d)])
    ws = fista.Workspace(problem, K["AUGMENTED"], x0, max_iter)
    data_step = fista.initial_step(problem, ws.x.shape, True, 0.0)
    sched = Schedule(problem, _multipliers_in(problem, multipliers),
                     RHO_START / (data_step * _squared_norm(problem.X)), tol)
    ws.state[K["S_STEP"]] = fista.initial_step(problem, ws.x.shape, True, sched.rho)
    polisher = Polisher(problem, tol, cone_tol)

    def polish_args(ws):
        return (_split(problem, ws.y),
                _multipliers_out(problem, sched.shifted(ws.Z_y)))

    # The loop's own targets: tightened where the returned point's certificate
    # misses (see fista.CONFIRMATIONS).
    target = {"tol": tol, "cone_tol": cone_tol}
    checked = None  # (blocks, multipliers, certificate) of the last check

    def run(limit, inner_tol):
        return fista.run(problem, ws, monitor, max_iter=limit,
                          mult=sched.mult, rho=sched.rho, inner_tol=inner_tol,
                          polisher=polisher, polish_args=polish_args,
                          blocks_of=lambda x: _split(problem, x), **target)

    try:
        # Evaluate the starting point: a warm start near the optimum gets a
        # first subproblem tolerance to match (1e-2 times its certificate).
        code, stop = run(int(ws.state[K["S_ITER"]]), 0.0)
        sched.inner_tol = max(tol * INNER_TOL_FLOOR,
                              INNER_TOL_START * min(1.0, ws.state[K["S_OPT"]]))
        for _ in range(fista.CONFIRMATIONS + 1):
            checked = None
            while code in (K["MAX_ITER"], K["INNER_CONVERGED"]) and not stop:
                code, stop = run(max_iter, sched.inner_tol)
                if code != K["INNER_CONVERGED"] or stop:
                    break
                sched.update(ws.Z_y, ws.state[K["S_VIOL"]])
                ws.restart_at_y()
            if code != K["CONVERGED"] or stop or polisher.result is not None:
                break
            blocks, mults = polish_args(ws)
            checked = (blocks, mults, certificate(problem, **blocks,
                                                  multipliers=mults))
            if _tighten(target, tol, cone_tol, checked[2]):
                break
            code = K["MAX_ITER"]  # resume at the tighter target
    except KeyboardInterrupt:
        code, stop = K["RUNNING"], INTERRUPTED
    fista.check_finite_run(problem, ws, code, lambda x: _split(problem, x),
                            monitor.start)
    blocks, mults, cert = (polisher.result or checked
                           or (*polish_args(ws), None))
    quoted = None  # the loop's own optimality, unless it chased a tighter target
    violation = ws.state[K["S_VIOL"]]
    if target["tol"] < tol or target["cone_tol"] < cone_tol:
        cert = cert or certificate(problem, **blocks, multipliers=mults)
        quoted, violation = cert.optimality, cert.cone_violation
    status, message = fista.describe(code, stop, ws.state, tol, quoted,
                                     cone=(violation, cone_tol))
    return Result(status, message, blocks, int(ws.state[K["S_ITER"]]),
                         ws.history_dict(True), monitor.start, mults,
                         {"n_outer": sched.n_outer, "rho": sched.rho,
                          "polished": polisher.result is not None}, cert)
