r"""Fashion-MNIST at full scale: the convex gated ReLU model against Adam and SGD.

Data: the official IDX files (60,000 training and 10,000 test images of
28 x 28 pixels, 10 classes), by default from the Debian package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``; ``--data``
to point elsewhere). Pixels are scaled to [0, 1].

Convex model (cvxnn, fast solver):

1. preprocessing, fitted on the training images only and timed with the
   model: centre, project on the top ``--components`` principal components
   and whiten (divide each by the square root of its eigenvalue). Without
   whitening the first-order solver crawls (the pixel covariance has a
   condition number of ~1e5); with ``--components 0`` the raw pixels are
   only standardized. This preprocessing is applied to the convex model only
   (the baselines train on raw pixels, their standard input, unless
   ``--baseline-input features``);
2. gated ReLU program: ``--patterns`` gates (``spectral``, the default:
   Gaussian in the whitened space with the variance of each component's
   entry ``(lambda_j / lambda_1)^exponent``, see :func:`spectral_gates`;
   ``gaussian``: isotropic there; ``pixel``: Gaussian in pixel space carried
   into it; ``conv``: random 5 x 5 patches, see :func:`pixel_gates`), a bias, one-hot
   outputs (10 x P neurons: every class has its own P neurons), squared or
   cross-entropy loss, group_l1 at each ``lam`` of ``--lams`` (largest first,
   each warm-started from the previous), float32 by default;
3. one ``fast_solve`` per lam, stopped by ``--max-iter`` / ``--time-limit`` /
   ``--tol``; its callback copies the iterate every ``--eval-every`` seconds
   and the copies' test accuracies, measured after the solve, give the
   accuracy-against-time curve. The certificate (relative duality gap) of
   the returned weights is reported whatever it is: at these budgets the
   solve is not certified optimal, and the table says so;
4. the solution's network (``sol.network``: a two-layer gated ReLU network,
   the convex model's own non-convex form) predicts the test images;
5. its ReLU network: the cone decomposition of the last solution
   (:func:`cvxnn.decompose`, ``method="fast"``: one least-distance program
   per active neuron) gives a two-layer ReLU network that predicts exactly
   what the gated model predicts on the training images; its test accuracy,
   width and the time of the decomposition are reported on their own row
   (``--decompose``; off by default: on the full training set each
   neuron's two least-distance programs have 60,000 rows each: 180 s for
   500 active neurons on this 2-core machine, 2026-11-27).

Baselines (PyTorch): a two-layer ReLU network with the same number of hidden
units (10 x P), cross-entropy loss, batch ``--batch-size``, trained by Adam
(``--adam-lr``) and by SGD (``--sgd-lr``, momentum ``--sgd-momentum``) from
PyTorch's default initialization. Each trains for ``--baseline-factor``
times the convex model's wall time (for a lam grid: the last, smallest lam,
whose wall time counts the whole path; test accuracy measured every
``--eval-every`` training seconds, clock paused), so the table gives its
accuracy at the convex model's wall time and the time it needs to reach the
convex model's test accuracy.

``--validation N`` holds out the last N training images as the test set (the
official test set is then not touched): use it to choose settings.

Usage (from the repository root)::

    PYTHONPATH=. python comparisons/fashion_mnist.py
    PYTHONPATH=. python comparisons/fashion_mnist.py --validation 10000 --lams 1e-3,1e-4
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _idx import DEFAULT_DIR, load_fashion_mnist
from _suite import load_average, machine_header, write_csv

import cvxnn
from cvxnn.core.gates import orthogonal_frames
from cvxnn.core.network import network_from_weights
from cvxnn_fast import fast_solve

SIDE = 28


class Features:
    """Centring + PCA + whitening fitted on training images (see the docstring).

    Neither the fit nor the transform makes a centred copy of the images: a
    fresh 188 MB array cost 0.5-0.9 s here (page faults), more than the
    products. The covariance is accumulated over row chunks of one reused
    buffer, and ``(X - mean) Q = X Q - mean Q``.
    """

    CHUNK_ROWS = 8192

    def __init__(self, X, n_components, whiten=True, dtype=np.float32):
        self.mean = X.mean(axis=0, dtype=np.float64).astype(dtype)
        self.dtype = np.dtype(dtype)
        buffer = np.empty((min(self.CHUNK_ROWS, len(X)), X.shape[1]), X.dtype)
        cov = np.zeros((X.shape[1], X.shape[1]))
        for start in range(0, len(X), self.CHUNK_ROWS):
            rows = X[start:start + self.CHUNK_ROWS]
            chunk = np.subtract(rows, self.mean, out=buffer[:len(rows)])
            cov += chunk.T @ chunk
        cov /= len(X)
        if n_components == 0:
            self.eigenvalues = None
            std = np.sqrt(np.diag(cov))
            self.projection = np.diag(1.0 / np.where(std > 0, std, 1.0)).astype(dtype)
            return
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1][:n_components]
        self.eigenvalues = values[order]
        scale = np.sqrt(self.eigenvalues) if whiten else np.sqrt(self.eigenvalues[0])
        self.projection = (vectors[:, order] / scale).astype(dtype)

    def __call__(self, X):
        Z = np.asarray(X, self.dtype) @ self.projection
        Z -= self.mean @ self.projection
        return np.ascontiguousarray(Z, dtype=self.dtype)


def spectral_gates(features, n_gates, exponent, seed=0, orthogonal=True):
    r"""Gaussian gates in the whitened space, scaled by the component variances.

    The same distribution as the library's :func:`cvxnn.spectral_gates`
    (which computes the spectrum from un-whitened data itself, for use in
    estimators as ``gates="spectral"``), here from the PCA's eigenvalues;
    the frames come from :func:`cvxnn.core.gates.orthogonal_frames`.

    Gate ``g`` has entries ``g_j ~ N(0, (lambda_j / lambda_1)^exponent)``
    (``lambda_j`` the variance of component ``j`` before whitening) and no bias
    (its hyperplane passes through the training mean). ``exponent=0`` is
    isotropic in the whitened space: every component, the noisy low-variance
    ones included, splits the data as often as the first. ``exponent=1`` is
    an isotropic Gaussian in pixel space carried into the components: the
    first few components decide nearly every split. ``exponent=0.5`` lies
    between; it was the best of 0, 0.25, 0.5, 0.75 and 1 on the validation
    split (see docs/history.md).

    ``orthogonal``: before the scaling, the gates come in frames of k (the
    number of components) orthogonal directions, each with the length of a
    standard Gaussian vector (chi with k degrees of freedom), so every gate
    is still marginally Gaussian but the gates of a frame split the data
    along different directions (orthogonal random features). On the
    validation split this was worth +0.3 points at P=100.
    """
    if features.eigenvalues is None:
        raise ValueError("spectral gates need PCA components (--components > 0).")
    rng = np.random.default_rng(seed)
    k = len(features.eigenvalues)
    scale = (features.eigenvalues / features.eigenvalues[0]) ** (exponent / 2)
    if orthogonal:
        G = orthogonal_frames(k, n_gates, rng)
    else:
        G = rng.standard_normal((k, n_gates))
    return np.vstack([G * scale[:, None], np.zeros((1, n_gates))])


def pixel_gates(features, kind, n_gates, seed=0, kernel_size=5):
    r"""Gates drawn in pixel space, carried into the feature space.

    A pixel-space gate ``(g, b)`` splits images by ``x^T g + b > 0``. With
    ``z = (x - mean) @ Q`` (Q the projection) and ``x - mean`` approximated by
    its projection, ``x^T g + b = z^T (Q^+ g) + (b + mean^T g)``, with
    ``Q^+ = Q^T`` scaled back by the eigenvalues (the pseudo-inverse of Q).
    ``kind="pixel"`` draws ``g`` standard normal (``Q^+ g`` is then Gaussian
    with the covariance of the components: high-variance directions dominate);
    ``kind="conv"`` draws ``g`` on a random ``k x k`` patch
    (:func:`cvxnn.conv_gates`). The bias ``b`` is standard normal.
    """
    rng = np.random.default_rng(seed)
    if kind == "pixel":
        G = rng.standard_normal((SIDE * SIDE, n_gates))
    else:
        G = cvxnn.conv_gates(SIDE, SIDE, 1, n_gates, kernel_size, random_state=rng)
    Q = features.projection.astype(np.float64)
    back = np.linalg.pinv(Q)  # (k, 784): z -> x - mean on the component span
    G_feat = back @ G
    offset = rng.standard_normal(n_gates) + features.mean.astype(np.float64) @ G
    return np.vstack([G_feat, offset[None, :]])


def solve_convex(problem, args, warm, elapsed):
    """One fast_solve from ``warm``; snapshots of the iterate for the curve.

    The solver's callback copies the iterate about every ``args.eval_every``
    seconds (a copy of the weights: microseconds). The snapshots are scored
    after the solve, so scoring never counts in the wall time and the solve
    is never restarted (restarting every few iterations, as earlier versions
    of this script did, resets R-FISTA's momentum and step size).
    """
    snapshots, due = [], [args.eval_every]

    def snapshot(info):
        if info["time"] >= due[0]:
            snapshots.append((elapsed + info["time"], info["iteration"],
                              info["weights"]()))
            due[0] = info["time"] + args.eval_every
        return False

    left = None if args.time_limit is None else max(args.time_limit - elapsed, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fast_solve(problem, tol=args.tol, max_iter=args.max_iter,
                         time_limit=left, warm_start=warm, callback=snapshot)
    return sol, snapshots


def accuracy(predict, X, y, batch=10000):
    hits = sum(int(np.sum(predict(X[i:i + batch]).argmax(1) == y[i:i + batch]))
               for i in range(0, len(y), batch))
    return hits / len(y)


def convex_runs(data, args):
    """Preprocess, build, solve along the lam grid; one result dict per lam."""
    X_train, y_train, X_test, y_test = data
    print(f"convex model ({load_average()})", flush=True)
    start = time.perf_counter()
    features = Features(X_train, args.components, not args.no_whiten,
                        np.dtype(args.dtype))
    Z_train, Z_test = features(X_train), features(X_test)
    gates = (None if args.gates == "gaussian" else
             spectral_gates(features, args.patterns, args.gate_exponent,
                            orthogonal=args.gate_draw == "orthogonal")
             if args.gates == "spectral" else
             pixel_gates(features, args.gates, args.patterns))
    prep = time.perf_counter() - start
    print(f"preprocessing: {Z_train.shape[1]} features in {prep:.1f}s", flush=True)
    targets = y_train if args.loss == "cross_entropy" else \
        np.eye(10, dtype=Z_train.dtype)[y_train]
    lams = sorted(args.lams, reverse=True)
    problem = cvxnn.build_problem(Z_train, targets, loss=args.loss, lam=lams[0],
                                  n_gates=args.patterns, gates=gates, bias=True,
                                  random_state=0)
    built = time.perf_counter() - start
    print(f"{problem!r}: built in {built - prep:.1f}s", flush=True)
    results, sol, elapsed = [], None, built
    for lam in lams:
        problem = cvxnn.with_lam(problem, lam)
        print(f"  lam={lam:g}", flush=True)
        sol, elapsed, curve = _solve_with_curve(problem, args, sol, elapsed, Z_test,
                                                y_test)
        results.append(_convex_row(sol, lam, elapsed, prep, Z_train, y_train, Z_test,
                                   y_test, args))
        results[-1]["curve"] = curve
        print(f"  lam={lam:g}: {results[-1]['status']}, {results[-1]['iterations']} "
              f"iterations, train {results[-1]['train_acc']:.4f}, test "
              f"{results[-1]['test_acc']:.4f}, wall {elapsed:.1f}s, rel. gap "
              f"{results[-1]['rel_gap']:.3g}, {sol.n_active} active neurons",
              flush=True)
    if args.decompose:
        results.append(relu_row(problem, sol, results[-1], Z_train, y_train, Z_test,
                                y_test))
    return results


def relu_row(problem, sol, convex, Z_train, y_train, Z_test, y_test):
    """The ReLU network of the last solution (cone decomposition), as a row."""
    print(f"  cone decomposition of {sol.n_active} neurons ({load_average()})",
          flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undecomposable blocks: in the report
        relu = cvxnn.decompose(problem, sol, method="fast")
    report = relu.info["decomposition"]
    net = relu.network
    row = {**{k: v for k, v in convex.items() if k != "curve"}, "rel_gap": None,
           "model": "its ReLU network (cone decomposition)",
           "width": net.n_neurons, "active": net.n_neurons, "status": relu.status,
           "train_acc": accuracy(net.predict, Z_train, y_train),
           "test_acc": accuracy(net.predict, Z_test, y_test),
           "wall_s": convex["wall_s"] + relu.solve_time,
           "decomposition_s": relu.solve_time, "objective": relu.objective,
           "norm_growth": report.norm_growth,
           "undecomposable": len(report.undecomposable_blocks)}
    print(f"  ReLU network: {net.n_neurons} neurons, train {row['train_acc']:.4f}, "
          f"test {row['test_acc']:.4f}, decomposition {relu.solve_time:.1f}s, norm "
          f"growth {report.norm_growth:.2f}x, {row['undecomposable']} undecomposable "
          f"blocks", flush=True)
    return row


def _solve_with_curve(problem, args, sol, elapsed, Z_test, y_test):
    """Solve (see :func:`solve_convex`); test accuracy of its snapshots.

    Returns the solution, the wall time after it, and the curve (times,
    accuracies) of the snapshots and the returned weights.
    """
    sol, snapshots = solve_convex(problem, args, sol, elapsed)
    elapsed += sol.solve_time
    snapshots.append((elapsed, sol.n_iter, sol.blocks))
    times, accs = [], []
    for t, iteration, blocks in snapshots:
        net = network_from_weights(problem, blocks)
        times.append(t)
        accs.append(accuracy(net.predict, Z_test, y_test))
        print(f"    {iteration:5d} it  {t:7.1f}s  test {accs[-1]:.4f}", flush=True)
    return sol, elapsed, (np.array(times), np.array(accs))


def _convex_row(sol, lam, elapsed, prep, Z_train, y_train, Z_test, y_test, args):
    net = sol.network
    return {"model": "convex gated ReLU (cvxnn fast)", "lam": lam,
            "input": _feature_name(args), "width": 10 * args.patterns,
            "active": sol.n_active, "status": sol.status,
            "iterations": sol.n_iter,
            "train_acc": accuracy(net.predict, Z_train, y_train),
            "test_acc": accuracy(net.predict, Z_test, y_test), "wall_s": elapsed,
            "preprocess_s": prep, "objective": sol.objective,
            "rel_gap": sol.certificate.relative_gap}


def _feature_name(args):
    if args.components == 0:
        return "standardized pixels"
    return f"PCA-{args.components}{'' if args.no_whiten else ' whitened'}"


def train_network(method, data, width, seconds, args):
    """A two-layer ReLU network trained for ``seconds``; its accuracy curve.

    With ``--baseline-input features`` it trains on the convex model's
    preprocessing (:class:`Features`), fitted again here and timed.
    """
    import torch

    X_train, y_train, X_test, y_test = data
    clock = 0.0
    if args.baseline_input == "features":
        t0 = time.perf_counter()
        features = Features(X_train, args.components, not args.no_whiten,
                            np.dtype(args.dtype))
        X_train, X_test = features(X_train), features(X_test)
        clock = time.perf_counter() - t0
    torch.manual_seed(args.seed)
    X, Y = torch.from_numpy(X_train), torch.from_numpy(y_train)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], width), torch.nn.ReLU(),
                              torch.nn.Linear(width, 10))
    opt = (torch.optim.Adam(net.parameters(), lr=args.adam_lr) if method == "adam"
           else torch.optim.SGD(net.parameters(), lr=args.sgd_lr,
                                momentum=args.sgd_momentum))

    def predict(A):
        with torch.no_grad():
            return net(torch.from_numpy(A)).numpy()

    times, accs, next_eval = [], [], clock + args.eval_every
    gen = torch.Generator().manual_seed(args.seed)
    while clock < seconds:
        perm = torch.randperm(len(Y), generator=gen)
        for i in range(0, len(Y), args.batch_size):
            t0 = time.perf_counter()
            idx = perm[i:i + args.batch_size]
            loss = torch.nn.functional.cross_entropy(net(X[idx]), Y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clock += time.perf_counter() - t0
            if clock >= next_eval or clock >= seconds:
                times.append(clock)
                accs.append(accuracy(predict, X_test, y_test))
                next_eval = clock + args.eval_every
                if clock >= seconds:
                    break
        print(f"    {method}: {clock:6.1f}s  test "
              f"{format(accs[-1], '.4f') if accs else '-'}", flush=True)
    return np.array(times), np.array(accs), accuracy(predict, X_train, y_train)


def baseline_row(method, curve, train_acc, reference, width, args):
    """Accuracy at the convex model's wall time, best, and time to match it."""
    times, accs = curve
    at = accs[times <= reference["wall_s"]]
    reached = np.flatnonzero(accs >= reference["test_acc"])
    lr = args.adam_lr if method == "adam" else args.sgd_lr
    return {"model": f"ReLU network, {method} (lr {lr:g})", "width": width,
            "method": method, "curve": curve,
            "input": "raw pixels" if args.baseline_input == "raw" else
            _feature_name(args),
            "test_acc_at_convex_time": float(at[-1]) if at.size else None,
            "test_acc": float(accs[-1]), "best_test_acc": float(accs.max()),
            "train_acc": train_acc, "wall_s": float(times[-1]),
            "time_to_convex_acc": float(times[reached[0]]) if reached.size else None}


COLUMNS = ["model", "lam", "input", "width", "active", "status", "iterations",
           "train_acc", "test_acc", "test_acc_at_convex_time", "best_test_acc",
           "wall_s", "time_to_convex_acc", "preprocess_s", "objective", "rel_gap",
           "decomposition_s", "norm_growth", "undecomposable"]


def print_table(rows):
    def cell(v, spec):
        return "-" if v is None else format(v, spec)
    print(f"\n{'model':38s} {'input':22s} {'width':>5s} {'train':>7s} {'test':>7s} "
          f"{'wall s':>7s}  details")
    for r in rows:
        if "decomposition_s" in r:
            extra = (f"decomposition {r['decomposition_s']:.1f} s, norm growth "
                     f"{r['norm_growth']:.2f}x, {r['undecomposable']} undecomposable "
                     f"blocks, {r['status']}")
        elif "lam" in r:
            extra = (f"lam={r['lam']:g}, {r['iterations']} it, rel. gap "
                     f"{r['rel_gap']:.3g}, {r['active']} active, {r['status']}")
        else:
            extra = (f"test at convex time {cell(r['test_acc_at_convex_time'], '.4f')}"
                     f", best {r['best_test_acc']:.4f}, reaches convex acc at "
                     f"{cell(r['time_to_convex_acc'], '.1f')} s")
        print(f"{r['model']:38s} {r['input']:22s} {r['width']:5d} "
              f"{r['train_acc']:7.4f} {r['test_acc']:7.4f} {r['wall_s']:7.1f}  "
              f"{extra}", flush=True)


def print_curves(rows, baselines):
    """Test accuracy of every model at the convex model's checkpoints."""
    convex = [r for r in rows if "lam" in r and "decomposition_s" not in r][-1]
    print(f"\ntest accuracy against wall time (convex checkpoints)\n{'wall s':>7s} "
          f"{'convex':>7s} " + " ".join(f"{m:>7s}" for m in baselines))
    for t, acc in zip(*convex["curve"], strict=True):
        cells = []
        for method in baselines:
            times, accs = next(r for r in rows if r.get("method") == method)["curve"]
            seen = accs[times <= t]
            cells.append(f"{seen[-1]:7.4f}" if seen.size else f"{'-':>7s}")
        print(f"{t:7.1f} {acc:7.4f} " + " ".join(cells))


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DIR, help="directory of the IDX files")
    p.add_argument("--validation", type=int, default=0,
                   help="hold out the last N training images as the test set")
    p.add_argument("--components", type=int, default=100, help="PCA components "
                   "(0: standardized raw pixels)")
    p.add_argument("--no-whiten", action="store_true")
    p.add_argument("--decompose", action="store_true",
                   help="also split the solution into its ReLU network (slow)")
    p.add_argument("--gates", choices=["spectral", "gaussian", "pixel", "conv"],
                   default="spectral")
    p.add_argument("--gate-exponent", type=float, default=0.5,
                   help="spectral gates: variance of component j's entry is "
                   "(lambda_j / lambda_1)^exponent")
    p.add_argument("--gate-draw", choices=["orthogonal", "iid"], default="orthogonal",
                   help="spectral gates: orthogonal frames or independent draws")
    p.add_argument("--patterns", type=int, default=100, help="gates sampled (P)")
    p.add_argument("--loss", choices=["cross_entropy", "squared"],
                   default="cross_entropy")
    p.add_argument("--lams", default="1e-3", help="comma-separated lam grid")
    p.add_argument("--max-iter", type=int, default=30)
    p.add_argument("--time-limit", type=float, default=None,
                   help="wall seconds for the convex model, preprocessing included")
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--baselines", default="adam,sgd")
    p.add_argument("--baseline-input", choices=["raw", "features"], default="raw")
    p.add_argument("--baseline-factor", type=float, default=2.0)
    p.add_argument("--baseline-min-seconds", type=float, default=0.0,
                   help="floor on the baselines' training time (for tiny tests)")
    p.add_argument("--adam-lr", type=float, default=1e-3)
    p.add_argument("--sgd-lr", type=float, default=0.05)
    p.add_argument("--sgd-momentum", type=float, default=0.9)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--eval-every", type=float, default=1.0,
                   help="seconds between test-accuracy measurements (every model)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="comparisons/results/fashion_mnist.csv")
    args = p.parse_args(argv)
    if args.gates == "spectral" and args.components == 0:
        p.error("--gates spectral needs PCA components (--components > 0)")
    args.lams = [float(v) for v in args.lams.split(",")]
    args.baselines = [b for b in args.baselines.split(",") if b]
    return args


def load(args):
    X_train, y_train, X_test, y_test = load_fashion_mnist(args.data)
    if args.validation:
        n = len(y_train) - args.validation
        X_test, y_test = X_train[n:], y_train[n:]
        X_train, y_train = X_train[:n], y_train[:n]
    print(f"data: {len(y_train)} training, {len(y_test)} "
          f"{'validation' if args.validation else 'test'} images of "
          f"{X_train.shape[1]} pixels from {args.data}", flush=True)
    return X_train, y_train, X_test, y_test


def main(argv=None):
    args = parse(argv)
    print(machine_header(), flush=True)
    if args.baselines:
        import torch

        torch.set_num_threads(args.threads)
    data = load(args)
    rows = convex_runs(data, args)
    # the last lam: its wall time counts the whole path
    best = [r for r in rows if "decomposition_s" not in r][-1]
    width = 10 * args.patterns
    seconds = max(args.baseline_factor * best["wall_s"], args.baseline_min_seconds)
    for method in args.baselines:
        print(f"{method}: width {width}, {seconds:.1f}s of training "
              f"({load_average()})", flush=True)
        times, accs, train_acc = train_network(method, data, width, seconds, args)
        rows.append(baseline_row(method, (times, accs), train_acc, best, width, args))
    print(machine_header())
    print_table(rows)
    if args.baselines:
        print_curves(rows, args.baselines)
    write_csv(Path(args.out), rows, COLUMNS)
    print(f"CSV: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
