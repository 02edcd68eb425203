"""Randomized campaign: ``fast_solve`` with its defaults against CLARABEL.

Seeded random small problems across every formulation x loss x regularizer,
with and without bias, some with badly scaled columns, a constant column or
duplicated rows, lam log-uniform below lam_max. Each is solved by
``fast_solve(problem, tol=1e-6)`` (defaults otherwise) and by CLARABEL; the
table reports, per combination,

* the rate of ``optimal`` answers,
* the worst ratio of fast's time to CLARABEL's (both ``sol.solve_time``;
  CLARABEL's includes CVXPY's canonicalization, as everywhere in
  comparisons/),
* the number of *wrong* ``optimal`` answers: objective above CLARABEL's by
  more than the answer's own certified gap (must be zero).

Unregularized problems (lam = 0) come with a KKT residual, not a duality
gap, so they cannot be judged wrong; their objectives are compared all the
same (column ``off``: ``optimal`` answers more than tol |F| above CLARABEL).
Problems that are not well posed are counted apart: those CLARABEL does not
solve to ``optimal``, and unregularized logistic or cross-entropy fits that
have no minimizer (a direction of the weights along which no sample's loss
grows and some falls, e.g. separable data: :func:`has_recession_direction`).

    python comparisons/campaign.py                 # 600 problems, n 15-250
    python comparisons/campaign.py --count 120 --seed 1

``tests/test_campaign.py`` runs a smaller version (small n) in the suite.
"""

import argparse
import itertools
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from _suite import machine_header, write_csv

import cvxnn
from cvxnn.core.certificates import lam_max
from cvxnn.core.status import OPTIMAL
from cvxnn_fast import fast_solve

FORMULATIONS = ("gated_relu", "relu")
LOSSES = ("squared", "logistic", "cross_entropy")
REGULARIZERS = ("group_l1", "feature_group_l1", "l2", "l1", None)
COMBINATIONS = tuple(itertools.product(FORMULATIONS, LOSSES, REGULARIZERS))
PATHOLOGIES = ("none", "scaled", "constant", "duplicated")
TOL = 1e-6
# An ``optimal`` answer is wrong when its objective exceeds CLARABEL's by more
# than its certified gap plus this slack relative to max(1, |F|) (CLARABEL's
# own accuracy).
SLACK = 1e-7


@dataclass(frozen=True)
class Spec:
    """One random problem, reproducible from (seed, index)."""

    seed: int
    index: int
    formulation: str
    loss: str
    regularizer: str | None
    n_samples: int
    n_features: int
    n_gates: int
    bias: bool
    pathology: str
    lam_fraction: float  # lam / lam_max (0 when unregularized)

    @property
    def combination(self):
        return (self.formulation, self.loss, self.regularizer)


def specs(count, seed=0, n_range=(15, 250), d_range=(1, 10), gate_range=(3, 40)):
    """``count`` problem specs cycling through every combination."""
    out = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        formulation, loss, regularizer = COMBINATIONS[index % len(COMBINATIONS)]
        out.append(Spec(
            seed, index, formulation, loss, regularizer,
            int(rng.integers(n_range[0], n_range[1] + 1)),
            int(rng.integers(d_range[0], d_range[1] + 1)),
            int(rng.integers(gate_range[0], gate_range[1] + 1)),
            bool(rng.integers(2)), PATHOLOGIES[int(rng.integers(len(PATHOLOGIES)))],
            0.0 if regularizer is None else float(10 ** rng.uniform(-4, -0.05))))
    return out


def _data(spec):
    rng = np.random.default_rng([spec.seed, spec.index, 1])
    n, d = spec.n_samples, spec.n_features
    X = rng.standard_normal((n, d))
    if spec.pathology == "scaled":
        X *= 10.0 ** rng.uniform(-3, 3, d)
    elif spec.pathology == "constant":  # one more column, constant
        X = np.hstack([X, np.full((n, 1), rng.uniform(0.5, 3.0))])
        d += 1
    elif spec.pathology == "duplicated":
        rows = rng.integers(n, size=max(1, n // 4))
        X[rng.integers(n, size=rows.size)] = X[rows]
    signal = np.tanh(X / X.std(axis=0).clip(1e-12) @ rng.standard_normal((d, 3)))
    noisy = signal + 0.3 * rng.standard_normal((n, 3))
    if spec.loss == "squared":
        y = noisy[:, :1 + int(rng.integers(2))]
    elif spec.loss == "logistic":
        y = np.where(noisy[:, 0] > 0, 1, -1)
        y[:2] = (1, -1)  # both classes present
    else:
        y = np.argmax(noisy, axis=1)
        y[:3] = (0, 1, 2)
    return X, y


def build(spec):
    """The Problem of a spec (lam from lam_fraction and the gated lam_max)."""
    X, y = _data(spec)
    kwargs = {"formulation": spec.formulation, "loss": spec.loss,
              "n_gates": spec.n_gates, "bias": spec.bias,
              "random_state": spec.index}
    # The gated group_l1 lam_max bounds every lam worth solving (the ReLU one
    # is smaller); l2 and the other norms take the same scale.
    probe = _gated_probe(X, y, kwargs)
    lam = 0.0 if spec.regularizer is None else spec.lam_fraction * lam_max(probe)
    return cvxnn.build_problem(X, y, **kwargs, regularizer=spec.regularizer, lam=lam)


def _gated_probe(X, y, kwargs):
    """The gated group_l1 problem of the data (for lam_max); where no gate of
    a few activates any sample (a constant column can do that), the spec's
    gate count is doubled until one does (kwargs updated)."""
    for _ in range(5):
        try:
            return cvxnn.build_problem(X, y, **{**kwargs, "formulation": "gated_relu"},
                                       regularizer="group_l1", lam=1.0)
        except ValueError:
            kwargs["n_gates"] *= 2
    raise ValueError("no gate activates any sample")


@dataclass
class Row:
    spec: Spec
    well_posed: bool
    status: str = ""
    method: str = ""
    optimality: float = np.nan
    fast_time: float = np.nan
    clarabel_time: float = np.nan
    excess: float = np.nan  # (F_fast - F_clarabel) / max(1, |F_clarabel|)
    wrong: bool = False  # optimal, with a gap, worse than CLARABEL beyond it
    off: bool = False  # optimal, without a gap, worse than CLARABEL by tol |F|

    @property
    def optimal(self):
        return self.status == OPTIMAL

    @property
    def ratio(self):
        return self.fast_time / self.clarabel_time


def reference(problem):
    """CLARABEL's solution (None when it does not report optimal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sol = problem.solve("CLARABEL")
        except Exception:  # noqa: BLE001 (a failed reference: not well posed)
            return None
    if sol.status != OPTIMAL:
        return None
    if problem.lam == 0 and problem.loss.name != "squared" and \
            has_recession_direction(problem):
        return None
    return sol


def has_recession_direction(problem):
    """Whether the unregularized classification fit has no minimizer.

    It has none when some weights change the predictions ``Z = A U``
    so that no sample's loss grows and the margins' sum grows (logistic:
    ``y_j z_j >= 0``; cross-entropy: ``z_j[label] >= z_j[k]``; ReLU: within
    the cones): the objective then decreases along that ray forever. A
    linear feasibility program (CLARABEL; HiGHS or ECOS where it fails).
    """
    import cvxpy as cp

    X, D, Y = problem.X.astype(float), problem.patterns, problem.y
    c, P, d = problem.weight_shape
    relu = problem.formulation.name == "relu"
    blocks = [cp.Variable((P, d)) for _ in range(c * (2 if relu else 1))]
    cones = []
    if relu:
        signs = 2.0 * D - 1.0
        for B in blocks:
            cones += [cp.multiply(signs, X @ B.T) >= 0]
    U = [blocks[k] - blocks[c + k] if relu else blocks[k] for k in range(c)]
    Z = cp.hstack([cp.reshape(cp.sum(cp.multiply(D, X @ U[k].T), axis=1), (-1, 1),
                              order="C") for k in range(c)])
    if problem.loss.name == "logistic":
        margins = [cp.multiply(Y, Z)]
    else:
        true = cp.sum(cp.multiply(Y, Z), axis=1)
        margins = [true - Z[:, k] for k in range(c)]
    constraints = cones + [m >= 0 for m in margins]
    constraints.append(sum(cp.sum(m) for m in margins) == 1)
    lp = cp.Problem(cp.Minimize(0), constraints)
    for solver in ("CLARABEL", "HIGHS", "ECOS"):
        if solver not in cp.installed_solvers():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                lp.solve(solver=solver)
            except cp.error.SolverError:
                continue
        if lp.status in (cp.OPTIMAL, cp.INFEASIBLE):
            break
    return lp.status == cp.OPTIMAL


def compare(spec, cache=None):
    """Solve one spec both ways; ``cache`` maps specs to CLARABEL solutions."""
    problem = build(spec)
    if cache is not None and spec in cache:
        ref = cache[spec]
    else:
        ref = reference(problem)
        if cache is not None:
            cache[spec] = ref
    if ref is None:
        return Row(spec, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fast_solve(problem, tol=TOL)
    cert = sol.certificate
    scale = max(1.0, abs(ref.objective))
    excess = sol.objective - ref.objective
    optimal = sol.status == OPTIMAL
    if cert.duality_gap is not None:
        wrong, off = optimal and excess > cert.duality_gap + SLACK * scale, False
    else:
        wrong, off = False, optimal and excess > TOL * scale + SLACK * scale
    return Row(spec, True, sol.status, sol.info.get("method", ""),
               float(cert.optimality if cert.optimality is not None else np.nan),
               sol.solve_time, ref.solve_time, excess / scale, bool(wrong),
               bool(off))


def _name(combination):
    formulation, loss, reg = combination
    return f"{formulation:10s} {loss:13s} {str(reg):16s}"


def table(rows):
    """Per-combination lines and a total line, as text."""
    groups = defaultdict(list)
    for row in rows:
        groups[row.spec.combination].append(row)
    lines = [f"{'combination':41s} {'posed':>5s} {'optimal':>8s} {'wrong':>5s} "
             f"{'off':>3s} "
             f"{'worst ratio':>11s} {'median ratio':>12s} {'worst opt':>9s}  methods"]
    for combination in COMBINATIONS:
        lines.append(_line(_name(combination), groups.get(combination, [])))
    lines.append(_line(f"{'all':41s}", rows))
    return "\n".join(lines)


def _line(name, rows):
    posed = [r for r in rows if r.well_posed]
    if not posed:
        return f"{name} {0:5d}"
    ratios = [r.ratio for r in posed]
    worst_opt = max((r.optimality for r in posed if not r.optimal), default=np.nan)
    methods = ",".join(sorted({r.method for r in posed}))
    return (f"{name} {len(posed):5d} {np.mean([r.optimal for r in posed]):8.1%} "
            f"{sum(r.wrong for r in posed):5d} {sum(r.off for r in posed):3d} "
            f"{max(ratios):11.2f} "
            f"{np.median(ratios):12.2f} {worst_opt:9.1e}  {methods}")


def summary(rows):
    """(rate of optimal, number wrong, worst time ratio) over well-posed rows."""
    posed = [r for r in rows if r.well_posed]
    return (float(np.mean([r.optimal for r in posed])),
            sum(r.wrong for r in posed), max(r.ratio for r in posed))


CSV_COLUMNS = ("index", "formulation", "loss", "regularizer", "n_samples",
               "n_features", "n_gates", "bias", "pathology", "lam_fraction",
               "well_posed", "status", "method", "optimality", "fast_time",
               "clarabel_time", "excess", "wrong", "off")


def _csv_row(row):
    out = {k: v for k, v in asdict(row).items() if k != "spec"}
    return {**asdict(row.spec), **out}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-n", type=int, default=250)
    parser.add_argument("--failures", action="store_true",
                        help="print each problem not answered optimal")
    parser.add_argument("--out", default="comparisons/results/campaign.csv",
                        help="CSV of every problem (default: %(default)s)")
    args = parser.parse_args(argv)
    print(machine_header())
    start = time.monotonic()
    rows = [compare(spec) for spec in specs(args.count, args.seed,
                                            n_range=(15, args.max_n))]
    print(f"# {args.count} problems, seed {args.seed}, n 15-{args.max_n}, "
          f"tol {TOL:g}, {time.monotonic() - start:.0f} s")
    print(table(rows))
    if args.failures:
        for r in rows:
            if r.well_posed and (not r.optimal or r.wrong):
                print(r)
    write_csv(Path(args.out), [_csv_row(r) for r in rows], CSV_COLUMNS)
    rate, wrong, worst = summary(rows)
    print(f"\noptimal {rate:.1%}  wrong {wrong}  worst time ratio {worst:.2f}")
    return 0 if wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
