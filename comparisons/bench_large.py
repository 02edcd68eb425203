r"""Certified optima at full dataset scale: Newton-CG against R-FISTA.

Prints, side by side in one run, for each problem and method: the time at
which the relative duality gap (the certificate of
:mod:`cvxnn.core.certificates`, the same for every method) first reaches
1e-1, 1e-2, 1e-3 and 1e-4, the final gap, and the final objective's distance
to the reference ``F_ref``: the smallest objective any run reached (the
largest dual value bounds ``F*`` from below, so ``F - F_ref`` is the
distance to the best known point, and the gaps bound the distance to ``F*``).

Problems (``--problems``, comma-separated):

* ``fmnist-pca-ce``, ``fmnist-pca-sq``: full Fashion-MNIST (60,000 training
  images, Debian package ``dataset-fashion-mnist``), centred, projected on
  100 principal components and whitened; ``fmnist-raw-ce``,
  ``fmnist-raw-sq``: the raw pixels standardized (784 features). Bias,
  P = 100 Gaussian gates (seed 0), 10 outputs, cross-entropy on the labels or
  squared loss on one-hot rows, group_l1, float32; ``fmnist-pca-lg``: the
  same with logistic loss on one-hot rows (one class against the rest).
* ``fmnist-pooled-sq``: real data where ``auto`` takes Newton-CG: the
  70,000 Fashion-MNIST images (training and test) and their mirror images
  (n = 140,000), mean-pooled to 7 x 7 pixels and standardized, bias,
  P = 20 gates, squared one-hot; Newton-CG stalls there and ``auto`` hands
  over to R-FISTA (docs/design/newton.md).
* ``synthetic-1m``: n = 1,000,000 rows, d = 50 Gaussian features with
  covariance spectrum ``j^-1`` in a random basis, a seeded teacher (ReLU
  network of 10 units) plus noise, squared loss, P = 100, float32.
* ``relu-synthetic-20k``: the same generator at n = 20,000, ReLU formulation
  (cone constraints), squared loss, P = 100, float32; ``relu-fmnist-pca-sq``
  and ``relu-fmnist-pca-ce``: the Fashion-MNIST PCA-100 programs in the ReLU
  formulation. Run them with ``--methods auto`` (the interior point in
  weight space where its steps are cheap, else the augmented Lagrangian) or
  ``augmented_lagrangian``; a gap threshold counts as reached once the cone
  violation is below it too, and ``F_ref`` is taken over the runs whose cone
  violation is at most 1e-6.

``--lams`` (default 1e-3), ``--methods`` (``newton``, ``fista``,
``augmented_lagrangian``, ``auto``, and ``pyscnn``: the paper's reference
code on the squared problems, gated ReLU, its iterates judged by cvxnn's
certificate after the clock stops; ``method@device``, e.g. ``newton@cpu``
or ``newton@cuda``, runs it on that PyTorch device; ``fista-uniform``:
R-FISTA with one step for all outputs, as before the per-output steps of
cross-entropy, for the side-by-side ratio; ``fista-euclidean``: R-FISTA
without the eigenbasis feature metric, as before it ran in the compiled
loop; ``fista-nospike``: in the feature metric without its spike part;
``fista-damping<x>``, e.g. ``fista-damping0.1``: in the feature metric with
``DAMPING = x`` instead of 1; ``fista-spike<x>``: with its spike part's
``SPIKE_BETA = x`` instead of 5),
``--tol`` (default 1e-4) and
``--time-limit`` per solve (default 120 s). Each solve runs in a fresh
subprocess that builds its own problem, so the peak resident memory it
reports (getrusage) is that solve's, data and problem included.

Usage (from the repository root)::

    PYTHONPATH=. python comparisons/bench_large.py --problems fmnist-pca-ce
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
from _idx import DEFAULT_DIR, load_fashion_mnist
from _suite import load_average, machine_header
from fashion_mnist import Features

import cvxnn
from cvxnn_fast import fast_solve

THRESHOLDS = (1e-1, 1e-2, 1e-3, 1e-4)
# Cone violation up to which a ReLU run counts as feasible for F_ref.
FEASIBLE = 1e-6
PYSCNN_MAX_BYTES = 6e9  # pyscnn's expanded n x P x d arrays, on a 24 GB machine


def data_dir():
    """The Fashion-MNIST IDX files: ``--data`` (passed to the method's child
    process through CVXNN_FMNIST), else the Debian package's folder."""
    return os.environ.get("CVXNN_FMNIST", DEFAULT_DIR)


def fmnist(features, loss, lam, n_gates=100, formulation="gated_relu"):
    X, y, _, _ = load_fashion_mnist(data_dir())
    X = X.astype(np.float32)
    Z = Features(X, 100 if features == "pca" else 0)(X)
    # cross-entropy: the labels; squared and logistic (one against the rest):
    # one-hot rows
    target = y if loss == "cross_entropy" else np.eye(10, dtype=np.float32)[y]
    return cvxnn.build_problem(Z, target, formulation=formulation, loss=loss,
                               lam=lam, n_gates=n_gates, bias=True, random_state=0)


def synthetic(lam, n=1_000_000, d=50, n_gates=100, seed=0,
              formulation="gated_relu"):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scale = (Q * np.arange(1, d + 1) ** -0.5).astype(np.float32)
    X = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        X[s:s + 100_000] = rng.standard_normal((min(100_000, n - s), d),
                                               dtype=np.float32) @ scale.T
    X /= X.std(axis=0)
    W1 = rng.standard_normal((d, 10)) / np.sqrt(d)
    y = np.maximum(X @ W1, 0) @ rng.standard_normal(10)
    y += 0.1 * y.std() * rng.standard_normal(n)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    return cvxnn.build_problem(X, y, formulation=formulation, loss="squared",
                               lam=lam, n_gates=n_gates, bias=True, random_state=0)


def pooled(lam, n_gates=20, size=7):
    X, y, Xt, yt = load_fashion_mnist(data_dir())
    images = np.concatenate([X, Xt]).astype(np.float32).reshape(-1, 28, 28)
    images = np.concatenate([images, images[:, :, ::-1]])
    labels = np.tile(np.concatenate([y, yt]), 2)
    k = 28 // size
    Z = images.reshape(-1, size, k, size, k).mean(axis=(2, 4)).reshape(len(images), -1)
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    return cvxnn.build_problem(Z, np.eye(10, dtype=np.float32)[labels], lam=lam,
                               n_gates=n_gates, bias=True, random_state=0)


def build(name, lam):
    if name == "fmnist-pooled-sq":
        return pooled(lam)
    formulation = "gated_relu"
    if name.startswith("relu-"):
        formulation, name = "relu", name[len("relu-"):]
    if name.startswith("synthetic-"):
        n = {"synthetic-1m": 1_000_000, "synthetic-20k": 20_000}[name]
        return synthetic(lam, n=n, formulation=formulation)
    _, features, loss = name.split("-")
    loss = {"ce": "cross_entropy", "sq": "squared", "lg": "logistic"}[loss]
    return fmnist(features, loss, lam, formulation=formulation)


def run(problem, method, tol, time_limit):
    name, _, device = method.partition("@")
    if name == "fista-uniform":  # this child process only
        from cvxnn_fast.fista import solver as fista_solver
        fista_solver.per_output_applies = lambda problem: False
        if device:
            from cvxnn_fast.pytorch import fista as device_fista
            device_fista.per_output_steps = lambda *args: False
        name = "fista"
    if name.startswith("fista-spike"):  # this child process only
        from cvxnn_fast.fista import feature_metric
        feature_metric.SPIKE_BETA = float(name[len("fista-spike"):])
        name = "fista"
    if name.startswith("fista-damping"):  # this child process only
        from cvxnn_fast.fista import feature_metric
        feature_metric.DAMPING = float(name[len("fista-damping"):])
        name = "fista"
    if name == "fista-nospike":  # this child process only
        from cvxnn_fast.fista import feature_metric
        feature_metric.SPIKE_BETA = 0.0
        name = "fista"
    if name == "fista-euclidean":  # this child process only
        from cvxnn_fast.fista import feature_metric
        feature_metric.considered = lambda *args: False  # both loops' rule
        name = "fista"
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fast_solve(problem, tol=tol, method=name, time_limit=time_limit,
                         max_iter=1_000_000, device=device or None)
    wall = time.perf_counter() - start
    hist_t = np.asarray(sol.history["time"])
    hist_g = np.asarray(sol.history["optimality"], float)
    if problem.formulation.has_cones:
        cone = np.asarray(sol.history["cone_violation"], float)
        hist_g = np.maximum(hist_g, np.nan_to_num(cone, nan=np.inf))
    reached = [float(hist_t[np.argmax(hist_g <= th)]) if np.any(hist_g <= th)
               else None for th in THRESHOLDS]
    cert = sol.certificate
    return {"method": method, "reached": reached, "gap": cert.relative_gap,
            "objective": cert.objective, "dual": cert.dual_objective,
            "n_iter": sol.n_iter, "wall": wall, "status": sol.status,
            "products": sol.info.get("hessian_products"),
            "taken": sol.info.get("method"),
            "cone": cert.cone_violation if problem.formulation.has_cones else None}


def run_pyscnn(problem, tol, time_limit, records=60):
    """pyscnn's R-FISTA (squared loss only), judged by cvxnn's certificate.

    Its iterates are recorded through its callback (thinned to at most
    ``records``, callback time excluded) and, after the clock stops, each
    gets cvxnn's certificate, so its "gap <= t" times are measured by the
    same function as cvxnn's (at the recorded iterates: the times are upper
    bounds within one recording interval)."""
    import _reference

    why = _reference.unsupported(problem)
    expanded = problem.n_samples * problem.n_patterns * problem.n_features * \
        problem.dtype.itemsize
    if not why and expanded > PYSCNN_MAX_BYTES:
        why = (f"on the CPU pyscnn forms n x P x d arrays ({expanded / 1e9:.0f} GB "
               f"here; peak 0.41 GB measured at n 20,000, P 100, d 51), over "
               f"this run's {PYSCNN_MAX_BYTES / 1e9:.0f} GB limit")
    if why:
        return {"method": "pyscnn", "skipped": why}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist, blocks, status = _reference.solve(
            problem, max_iter=10**7, tol=1e-12, max_records=records,
            time_limit=time_limit)
        weights = hist.pop("weights")
    wall = time.perf_counter() - start
    certs = [cvxnn.certificate(problem, U=w["U"]) for w in weights]
    gaps = np.array([c.relative_gap for c in certs], float)
    hist_t = np.asarray(hist["time"])
    reached = [float(hist_t[np.argmax(gaps <= th)]) if np.any(gaps <= th)
               else None for th in THRESHOLDS]
    best = int(np.argmin([c.objective for c in certs]))
    return {"method": "pyscnn", "reached": reached, "gap": float(gaps[-1]),
            "objective": certs[best].objective,
            "dual": max(c.dual_objective for c in certs),
            "n_iter": int(hist["iterations"]), "wall": wall,
            "status": str(status if isinstance(status, str) else "stopped"),
            "products": None, "cone": None}


def run_isolated(name, lam, method, tol, time_limit):
    """One solve in a fresh interpreter; adds its peak RSS (GB) to the row."""
    cmd = [sys.executable, __file__, "--child", json.dumps(
        [name, lam, method, tol, time_limit])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def child(spec):
    name, lam, method, tol, time_limit = json.loads(spec)
    problem = build(name, lam)
    row = run_pyscnn(problem, tol, time_limit) if method == "pyscnn" else \
        run(problem, method, tol, time_limit)
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(row))


def table(name, lam, rows):
    ran = [r for r in rows if "skipped" not in r]
    if not ran:
        return
    # A ReLU point that violates its cone constraints may sit below F*: the
    # reference is taken over the (nearly) feasible ones.
    feasible = [r for r in ran if r["cone"] is None or r["cone"] <= FEASIBLE]
    ref = min(r["objective"] for r in feasible or ran)
    lower = max(r["dual"] for r in ran)
    note = "" if feasible else f"; no run has cone violation <= {FEASIBLE:g}"
    print(f"\n{name}  lam={lam:g}  F_ref={ref:.10g}  (best dual {lower:.10g}{note})")
    head = "".join(f"  gap<={t:g}" for t in THRESHOLDS)
    print(f"{'method':11s}{head}  final gap  F-F_ref    iters  wall s  peak GB"
          "  cone viol  status")
    for r in [r for r in rows if "skipped" in r]:
        print(f"{r['method']}: not run ({r['skipped']})")
    rows = [r for r in rows if "skipped" not in r]
    if not rows:
        return
    for r in rows:
        cells = "".join(f"{'-' if t is None else f'{t:.1f}s':>10s}"
                        for t in r["reached"])
        cone = "-" if r["cone"] is None else f"{r['cone']:.2e}"
        taken = f" ({r['taken']})" if r.get("taken") not in (None, r["method"]) else ""
        print(f"{r['method'][:11]:11s}{cells}  {r['gap']:9.2e}  "
              f"{r['objective'] - ref:9.2e}  {r['n_iter']:5d}  {r['wall']:6.1f}  "
              f"{r['peak_gb']:7.2f}  {cone:>9s}  {r['status']}{taken}", flush=True)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--problems", default="fmnist-pca-ce,fmnist-pca-sq")
    p.add_argument("--lams", default="1e-3")
    p.add_argument("--methods", default="newton,fista")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--time-limit", type=float, default=120.0)
    p.add_argument("--data", help="folder of the Fashion-MNIST IDX files "
                   f"(default {DEFAULT_DIR})")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.data:
        os.environ["CVXNN_FMNIST"] = args.data  # the children read it
    if args.child:
        return child(args.child)
    print(machine_header(), flush=True)
    for name in args.problems.split(","):
        for lam in (float(v) for v in args.lams.split(",")):
            rows = []
            for m in args.methods.split(","):
                rows.append(run_isolated(name, lam, m, args.tol, args.time_limit))
                print(f"[{name} lam={lam:g}] {m} done, "
                      f"{load_average()}", flush=True)
            table(name, lam, rows)


if __name__ == "__main__":
    main()
