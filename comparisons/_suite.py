r"""Seeded problems shared by the comparison scripts, and the machine header.

Datasets (every one seeded, features standardized, a bias column appended
by :func:`cvxnn.build_problem`):

* ``teacher-*``: a planted two-layer ReLU network
  :math:`y = \sum_{m=1}^{k} \max(x^\top w_m, 0)\, a_m + 0.05\,\varepsilon`
  with Gaussian inputs :math:`x \sim N(0, I_d)`, :math:`w_m \sim N(0, I_d/d)`,
  :math:`a_m \sim N(0, 1)`, targets scaled to unit variance. Classification
  targets are the sign of :math:`y - \operatorname{median}(y)`.
* ``breast_cancer`` (binary), ``wine`` (3 classes), ``diabetes`` (regression),
  ``digits`` (10 classes): the datasets scikit-learn ships, row-subsampled
  (seeded) to at most ``max_samples`` rows.

Targets per loss: ``squared`` takes the regression target, +-1 for a binary
task or the one-hot rows of a multi-class task; ``logistic`` takes binary
labels; ``cross_entropy`` takes class labels (binary or multi-class).
"""

import os
import platform
import sys
from dataclasses import dataclass

import numpy as np

TEACHER_SIZES = {  # name: (n_samples, n_features, teacher width)
    "teacher-s": (60, 4, 3),
    "teacher-m": (150, 8, 5),
    "teacher-l": (400, 16, 10),
}
SKLEARN_SETS = ("breast_cancer", "wine", "diabetes", "digits")
LOSSES_FOR_TASK = {
    "regression": ("squared",),
    "binary": ("squared", "logistic", "cross_entropy"),
    "multiclass": ("squared", "cross_entropy"),
}


@dataclass(frozen=True)
class Dataset:
    """Features and the target of one task (``labels`` are integers 0..k-1)."""

    name: str
    X: np.ndarray
    target: np.ndarray
    task: str

    @property
    def losses(self):
        return LOSSES_FOR_TASK[self.task]

    def targets(self, loss):
        """The target array ``build_problem`` takes for ``loss``."""
        if loss not in self.losses:
            raise ValueError(f"loss: {loss!r} does not fit the {self.task} task of "
                             f"{self.name} (use one of {self.losses}).")
        if self.task == "regression":
            return self.target
        if loss == "squared":
            if self.task == "binary":
                return 2.0 * self.target - 1.0
            return np.eye(int(self.target.max()) + 1)[self.target]
        return self.target


def standardize(X):
    """Columns centred and scaled to unit variance (constant columns left at 0)."""
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def teacher(name, n_samples, n_features, width, task="regression", seed=0):
    """A planted two-layer ReLU teacher (see the module docstring)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    W1 = rng.standard_normal((width, n_features)) / np.sqrt(n_features)
    y = np.maximum(X @ W1.T, 0) @ rng.standard_normal(width)
    y = (y - y.mean()) / y.std() + 0.05 * rng.standard_normal(n_samples)
    if task == "binary":
        y = (y > np.median(y)).astype(np.int64)
    return Dataset(name, X, y, task)


def sklearn_dataset(name, max_samples, seed=0):
    """One of scikit-learn's bundled datasets, subsampled and standardized."""
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    X, y = loader(return_X_y=True)
    rng = np.random.default_rng(seed)
    if len(y) > max_samples:
        rows = _stratified_rows(y, max_samples, rng) if name != "diabetes" else \
            np.sort(rng.choice(len(y), max_samples, replace=False))
        X, y = X[rows], y[rows]
    if name == "diabetes":
        return Dataset(name, standardize(X), (y - y.mean()) / y.std(), "regression")
    task = "binary" if name == "breast_cancer" else "multiclass"
    return Dataset(name, standardize(X), y.astype(np.int64), task)


def _stratified_rows(y, size, rng):
    """Rows of a seeded subsample keeping every class (round-robin over classes)."""
    pools = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    rows, depth = [], 0
    while len(rows) < size:
        rows.extend(p[depth] for p in pools if depth < len(p))
        depth += 1
    return np.sort(np.array(rows[:size]))


def datasets(names, max_samples=200, seed=0):
    """The named datasets (teachers come as regression and binary tasks)."""
    out = []
    for name in names:
        if name in TEACHER_SIZES:
            n, d, k = TEACHER_SIZES[name]
            n = min(n, max_samples)
            out.append(teacher(name, n, d, k, "regression", seed))
            out.append(teacher(f"{name}-bin", n, d, k, "binary", seed))
        elif name in SKLEARN_SETS:
            out.append(sklearn_dataset(name, max_samples, seed))
        else:
            raise ValueError(f"dataset: unknown name {name!r}; known: "
                             f"{', '.join([*TEACHER_SIZES, *SKLEARN_SETS])}.")
    return out


def load_average():
    """The 1, 5 and 15 minute load averages, as printed next to timings."""
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def cone_scale(problem, blocks):
    """``max(1, max |X b|)`` over the blocks: the scale of the cone values.

    Cone violations are reported relative to it (a relative cone violation).
    """
    return max([1.0] + [float(np.max(np.abs(problem.X @ B.reshape(-1, B.shape[-1]).T)))
                        for B in blocks.values()])


def machine_header():
    """One line naming the machine and the versions that produced a result."""
    import cvxpy
    import scipy

    import cvxnn

    parts = [platform.platform(), f"{os.cpu_count()} cpus ({load_average()})",
             f"python {platform.python_version()}", f"numpy {np.__version__}",
             f"scipy {scipy.__version__}", f"cvxpy {cvxpy.__version__}",
             f"cvxnn {cvxnn.__version__}"]
    for module in ("clarabel", "ecos", "scs", "torch", "scnn"):
        version = _version(module)
        if version:
            parts.append(f"{'pyscnn' if module == 'scnn' else module} {version}")
    return "# " + ", ".join(parts + blas_kernels())


def blas_kernels():
    """The BLAS libraries loaded, with the kernels they run: numpy's and
    scipy's (the compiled solvers call scipy's). Where the environment pins
    ``OPENBLAS_CORETYPE`` (some machines do, for older OpenBLAS builds), the
    kernels are the pinned ones: an AVX2 pin on an AVX-512 machine about
    halves single-precision GEMM speed (comparisons/README.md, "BLAS
    kernels")."""
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS)
    from threadpoolctl import threadpool_info

    found = [f"{info['internal_api']} {info['version']} "
             f"{info.get('architecture') or ''}".rstrip()
             for info in threadpool_info() if info["user_api"] == "blas"]
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    return [f"BLAS {' / '.join(found)}"
            + (f" (OPENBLAS_CORETYPE={pinned})" if pinned else "")]


def _version(module):
    from importlib import metadata

    dist = {"scnn": "pyscnn"}.get(module, module)
    if module not in sys.modules:
        try:
            __import__(module)
        except ImportError:
            return None
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return getattr(sys.modules[module], "__version__", "?")


def write_csv(path, rows, columns):
    """Write dict rows to CSV with the given column order (missing cells empty)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return value
