r"""Families of gate vectors for :func:`cvxnn.build_problem` (``gates=G``).

A gate ``g`` in R^d fixes the activation pattern ``D = diag(1[X g > 0])``. The
convex program only sees the distinct patterns the gates produce, so the
family of gates decides which "data-local" linear models the network can use:

* :func:`gaussian_gates`: dense, i.i.d. standard normal entries (the default
  of :func:`cvxnn.build_problem`, which draws exactly these for the same seed).
* :func:`sparse_gates`: each gate is supported on a random set of ``order``
  features (interaction terms of a fixed order, as in sparse additive models).
* :func:`conv_gates`: each gate is supported on a random ``k x k`` patch of an
  image (all channels of the patch), like one filter of a convolution placed
  at a random position.
* :func:`spectral_gates`: data-dependent; orthogonal frames of directions in
  the data's whitened principal coordinates, weighted towards the leading
  components (the gates of the Fashion-MNIST recipe).

Every function returns a C-contiguous float array of shape ``(d, n_gates)``
with ``d = n_features + 1`` when ``bias=True``, else ``d = n_features``.

**The bias row.** :func:`cvxnn.build_problem` with ``bias=True`` appends a
column of ones as the *last* column of ``X``, so the matching gate row is the
last row of ``G``: ``X_b @ g = X @ g[:-1] + g[-1]``. With ``bias=True`` every
family but :func:`spectral_gates` draws that last entry i.i.d. standard normal
for every gate (so each gate's hyperplane has an offset and need not pass
through the origin; the spectral family's is ``-mean @ g``, through the
data's mean); the
support restrictions of the sparse and convolutional families apply to the
feature rows only. Use ``bias=False`` (the default) for problems built with
``bias=False``.

The entries on a gate's support are standard normal; scaling a gate does not
change its pattern, so no other scale is offered. Sampling happens in float64
from ``random_state`` and is then cast to ``dtype``, so float32 and float64
problems with one seed share their gates.
"""

import numpy as np

from cvxnn.core.patterns import standard_normal_gates as _standard_normal
from cvxnn.core.validation import (
    check_bool,
    check_choice,
    check_positive_int,
    check_random_state,
    check_real,
    check_X,
)

LAYOUTS = ("channels_last", "channels_first")


def _check_common(n_gates, bias, dtype):
    n_gates = check_positive_int(n_gates, "n_gates")
    bias = check_bool(bias, "bias")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}.") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {dtype}.")
    return n_gates, bias, dtype


def _with_bias_row(G_features, bias, rng, dtype):
    """Stack a standard normal bias row under the feature rows when ``bias``."""
    if bias:
        row = rng.standard_normal((1, G_features.shape[1]))
        G_features = np.vstack([G_features, row])
    return np.ascontiguousarray(G_features, dtype=dtype)


def gaussian_gates(n_features, n_gates, *, bias=False, random_state=None,
                   dtype=np.float64):
    r"""Dense gates with i.i.d. standard normal entries.

    .. math:: G_{a m} \sim \mathcal N(0, 1), \quad a = 1..d,\ m = 1..n_{gates}.

    These are the gates :func:`cvxnn.build_problem` samples when ``gates`` is
    not given: ``build_problem(X, y, n_gates=m, bias=b, random_state=s)`` and
    ``build_problem(X, y, gates=gaussian_gates(X.shape[1], m, bias=b,
    random_state=s), bias=b)`` build the same problem. (With
    ``standardize=True`` they do not: ``build_problem`` samples its gates for
    the standardized data, while ``gates=`` are gates of the raw data.)

    Parameters
    ----------
    n_features : int >= 1, features of the raw data (without the bias column).
    n_gates : int >= 1.
    bias : bool, add the bias row (see the module docstring).
    random_state : None, int or numpy Generator.
    dtype : float64 or float32.

    Returns
    -------
    G : ndarray (n_features + bias, n_gates)
    """
    n_features = check_positive_int(n_features, "n_features")
    n_gates, bias, dtype = _check_common(n_gates, bias, dtype)
    rng = check_random_state(random_state)
    return _standard_normal(n_features + int(bias), n_gates, rng, dtype)


def sparse_gates(n_features, n_gates, order, *, bias=False, random_state=None,
                 dtype=np.float64):
    r"""Gates supported on ``order`` features each, chosen at random.

    Gate ``m`` draws a support :math:`S_m \subset \{1..n_{features}\}` of size
    ``order`` uniformly without replacement, independently of the other gates,
    and sets :math:`G_{a m} \sim \mathcal N(0,1)` for :math:`a \in S_m`, 0 on
    the other feature rows. Its pattern then depends on those features only
    (plus the offset when ``bias=True``): an interaction of that order.

    Parameters
    ----------
    n_features : int >= 1.
    n_gates : int >= 1.
    order : int, 1 <= order <= n_features, features per gate.
    bias, random_state, dtype : as in :func:`gaussian_gates`.

    Returns
    -------
    G : ndarray (n_features + bias, n_gates), exactly ``order`` non-zero
        feature rows per column (with probability one).
    """
    n_features = check_positive_int(n_features, "n_features")
    n_gates, bias, dtype = _check_common(n_gates, bias, dtype)
    order = check_positive_int(order, "order")
    if order > n_features:
        raise ValueError(
            f"order: a gate cannot use more features than there are; got "
            f"order={order} with n_features={n_features}."
        )
    rng = check_random_state(random_state)
    # argsort of i.i.d. uniforms: a uniformly random subset per column.
    support = np.argsort(rng.random((n_features, n_gates)), axis=0)[:order]
    G = np.zeros((n_features, n_gates))
    G[support, np.arange(n_gates)] = rng.standard_normal((order, n_gates))
    return _with_bias_row(G, bias, rng, dtype)


def image_index(height, width, channels, layout="channels_last"):
    """Flat feature index of every (row, column, channel) of an image.

    Parameters
    ----------
    height, width, channels : ints >= 1.
    layout : ``"channels_last"`` (the image is stored as an array of shape
        (height, width, channels) and flattened in C order, i.e.
        ``index = (row * width + col) * channels + channel``) or
        ``"channels_first"`` (shape (channels, height, width),
        ``index = (channel * height + row) * width + col``).

    Returns
    -------
    index : int ndarray (height, width, channels)
    """
    height = check_positive_int(height, "height")
    width = check_positive_int(width, "width")
    channels = check_positive_int(channels, "channels")
    check_choice(layout, "layout", LAYOUTS)
    if layout == "channels_last":
        return np.arange(height * width * channels).reshape(height, width, channels)
    flat = np.arange(channels * height * width).reshape(channels, height, width)
    return np.ascontiguousarray(flat.transpose(1, 2, 0))


def conv_gates(height, width, channels, n_gates, kernel_size, *, layout="channels_last",
               bias=False, random_state=None, dtype=np.float64):
    r"""Gates supported on a random ``k x k`` patch of an image.

    The data rows are images of shape (height, width, channels) flattened as
    ``layout`` says (see :func:`image_index`; ``channels_last`` is the layout
    of ``images.reshape(n, -1)`` for an (n, h, w, c) array, ``channels_first``
    that of an (n, c, h, w) array). Gate ``m`` draws a top-left corner
    :math:`(r_m, c_m)` uniformly from the
    :math:`(h - k + 1)(w - k + 1)` positions where the patch fits and sets
    standard normal entries on the :math:`k \cdot k \cdot` channels features
    of rows :math:`r_m..r_m+k-1`, columns :math:`c_m..c_m+k-1`, all channels;
    every other feature row is 0. The pattern of the gate is then that of one
    convolutional filter applied at one position.

    Parameters
    ----------
    height, width, channels : ints >= 1, the image shape.
    n_gates : int >= 1.
    kernel_size : int k, 1 <= k <= min(height, width).
    layout : ``"channels_last"`` or ``"channels_first"``.
    bias, random_state, dtype : as in :func:`gaussian_gates`.

    Returns
    -------
    G : ndarray (height * width * channels + bias, n_gates)
    """
    index = image_index(height, width, channels, layout)
    n_gates, bias, dtype = _check_common(n_gates, bias, dtype)
    k = check_positive_int(kernel_size, "kernel_size")
    if k > min(height, width):
        raise ValueError(
            f"kernel_size: a {k} x {k} patch does not fit in a {height} x {width} "
            "image."
        )
    rng = check_random_state(random_state)
    rows = rng.integers(0, height - k + 1, size=n_gates)
    cols = rng.integers(0, width - k + 1, size=n_gates)
    offsets = np.arange(k)
    # patch[m] holds the flat indices of gate m's k*k*channels features.
    patch = index[rows[:, None, None] + offsets[None, :, None],
                  cols[:, None, None] + offsets[None, None, :]]
    patch = patch.reshape(n_gates, -1)
    G = np.zeros((index.size, n_gates))
    G[patch.T, np.arange(n_gates)] = rng.standard_normal(patch.T.shape)
    return _with_bias_row(G, bias, rng, dtype)


def _principal_axes(X, rtol):
    """Mean, variances (decreasing) and axes of the rows of X, tiny ones dropped."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    cov = np.cov(X, rowvar=False, bias=True).reshape(X.shape[1], X.shape[1])
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > rtol * max(values[0], np.finfo(float).tiny)
    return mean, values[keep], vectors[:, keep]


def orthogonal_frames(k, n_gates, rng):
    r"""``n_gates`` directions in R^k, drawn as frames of k orthogonal directions.

    Each frame is a Haar-distributed orthogonal matrix whose columns get the
    lengths of standard Gaussian vectors (chi with k degrees of freedom), so
    every column is marginally N(0, I_k) while the columns of one frame are
    orthogonal (orthogonal random features). Cost: one k x k QR per frame.
    """
    frames = []
    for _ in range(-(-n_gates // k)):
        Q, R = np.linalg.qr(rng.standard_normal((k, k)))
        Q *= np.where(np.diag(R) < 0, -1.0, 1.0)  # Haar, not QR's convention
        frames.append(Q * np.sqrt(rng.chisquare(k, k)))
    return np.hstack(frames)[:, :n_gates]


def spectral_gates(X, n_gates, *, exponent=0.5, orthogonal=True, bias=False,
                   random_state=None, dtype=np.float64, rtol=1e-10):
    r"""Gates drawn in the whitened principal coordinates of the data ``X``.

    With :math:`\mu` the mean of the rows of ``X``, :math:`\lambda_1 \ge
    \dots \ge \lambda_k` the variances of its principal components
    :math:`q_j` (those above ``rtol * lambda_1``) and
    :math:`z_j = q_j^\top (x - \mu) / \sqrt{\lambda_j}` the whitened
    coordinates, gate ``m`` splits the data by :math:`w_m^\top z > 0` with

    .. math:: w_{jm} \sim \mathcal N\big(0, (\lambda_j/\lambda_1)^{e}\big),

    ``e = exponent``: 0 is isotropic in the whitened space (every component,
    noisy low-variance ones included, splits as often as the first), 1 is an
    isotropic Gaussian in the original coordinates, 0.5 in between (best on
    Fashion-MNIST PCA features, see docs/design/defaults.md). With
    ``orthogonal`` the unscaled :math:`w` come in frames of k orthogonal
    directions (:func:`orthogonal_frames`); each gate is still marginally
    Gaussian. In the coordinates of ``X`` the gate is
    :math:`g = Q \Lambda^{-1/2} w` and, with ``bias=True``, the bias row is
    :math:`-\mu^\top g` (the hyperplane passes through the mean; with
    ``bias=False`` it passes through the origin, so centre the data).

    The gates depend on ``X`` only through its covariance, so they are the
    same hyperplanes whatever invertible linear scaling the data went
    through, except that whitened data has no spectrum left to weight by
    (then every ``exponent`` gives isotropic frames). Cost: one
    ``n_features^2`` covariance and its eigendecomposition.

    Parameters
    ----------
    X : array (n_samples, n_features), the data the gates split (no bias column).
    n_gates : int >= 1.
    exponent : float >= 0.
    orthogonal : bool, orthogonal frames (True) or independent Gaussian draws.
    bias, random_state, dtype : as in :func:`gaussian_gates`.
    rtol : components with variance below ``rtol * lambda_1`` are ignored.

    Returns
    -------
    G : ndarray (n_features + bias, n_gates)
    """
    X = check_X(X)
    n_gates, bias, dtype = _check_common(n_gates, bias, dtype)
    exponent = check_real(exponent, "exponent", "a finite number >= 0",
                           lambda v: v >= 0)
    orthogonal = check_bool(orthogonal, "orthogonal")
    rtol = check_real(rtol, "rtol", "a number in [0, 1)", lambda v: 0 <= v < 1)
    rng = check_random_state(random_state)
    mean, values, axes = _principal_axes(X, rtol)
    if values.size == 0:
        raise ValueError("X: all rows are equal; its spectrum is empty.")
    k = values.size
    W = (orthogonal_frames(k, n_gates, rng) if orthogonal
         else rng.standard_normal((k, n_gates)))
    W *= ((values / values[0]) ** (exponent / 2))[:, None]
    G = axes @ (W / np.sqrt(values)[:, None])
    if bias:
        G = np.vstack([G, -(mean @ G)[None, :]])
    return np.ascontiguousarray(G, dtype=dtype)
