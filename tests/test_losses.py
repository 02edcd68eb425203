"""Losses: value, gradient, conjugate, CVXPY expression and target encoding."""

import cvxpy as cp
import numpy as np
import pytest
from reference import encode_targets, loss_sum

from cvxnn.core.losses import LOSSES

LOSS_NAMES = tuple(LOSSES)


@pytest.fixture
def point(rng):
    """Predictions Z and targets (raw and encoded) for every loss, 7 x 3."""
    Z = rng.standard_normal((7, 3))
    raw = {
        "squared": rng.standard_normal((7, 3)),
        "logistic": rng.choice([-1, 1], size=(7, 3)),
        "cross_entropy": np.array([0, 1, 2, 2, 1, 0, 1]),
    }
    return Z, raw


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_value_against_numpy(name, point):
    Z, raw = point
    loss = LOSSES[name]
    Y, _ = loss.prepare_targets(raw[name], 7, np.float64)
    np.testing.assert_array_equal(Y, encode_targets(raw[name], name))
    assert loss.value(Z, Y) == pytest.approx(loss_sum(Z, Y, name), rel=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradient_against_finite_differences(name, point):
    Z, raw = point
    loss = LOSSES[name]
    Y, _ = loss.prepare_targets(raw[name], 7, np.float64)
    h = 1e-6
    numeric = np.zeros_like(Z)
    for idx in np.ndindex(Z.shape):
        E = np.zeros_like(Z)
        E[idx] = h
        numeric[idx] = (loss_sum(Z + E, Y, name) - loss_sum(Z - E, Y, name)) / (2 * h)
    np.testing.assert_allclose(loss.gradient(Z, Y), numeric, atol=1e-7)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_fenchel_young(name, point, rng):
    """l(z) + l*(s) >= <s, z>, with equality at s = grad l(z)."""
    Z, raw = point
    loss = LOSSES[name]
    Y, _ = loss.prepare_targets(raw[name], 7, np.float64)
    S = loss.gradient(Z, Y)
    assert loss.value(Z, Y) + loss.conjugate(S, Y) == pytest.approx(
        np.sum(S * Z), abs=1e-10)
    for _ in range(5):
        Z2 = Z + rng.standard_normal(Z.shape)
        assert loss.value(Z2, Y) + loss.conjugate(S, Y) >= np.sum(S * Z2) - 1e-10


@pytest.mark.parametrize("name", ["logistic", "cross_entropy"])
def test_conjugate_is_infinite_outside_its_domain(name, point):
    Z, raw = point
    loss = LOSSES[name]
    Y, _ = loss.prepare_targets(raw[name], 7, np.float64)
    assert loss.conjugate(3.0 * loss.gradient(Z, Y) + 1.0, Y) == np.inf


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_cvxpy_expression_has_the_same_value(name, point):
    Z, raw = point
    loss = LOSSES[name]
    Y, _ = loss.prepare_targets(raw[name], 7, np.float64)
    assert loss.cvxpy(cp.Constant(Z), Y).value == pytest.approx(loss.value(Z, Y),
                                                                 rel=1e-10)


def test_logistic_accepts_zero_one_and_signs():
    loss = LOSSES["logistic"]
    Y01, classes01 = loss.prepare_targets(np.array([0, 1, 1, 0]), 4, np.float64)
    Ypm, classespm = loss.prepare_targets(np.array([-1, 1, 1, -1]), 4, np.float32)
    np.testing.assert_array_equal(Y01, [[-1], [1], [1], [-1]])
    np.testing.assert_array_equal(Y01, Ypm)
    assert Ypm.dtype == np.float32
    np.testing.assert_array_equal(loss.decision(np.array([[-2.0], [0.5]]), classes01),
                                  [[0], [1]])
    np.testing.assert_array_equal(classespm, [-1, 1])


def test_cross_entropy_labels_and_one_hot():
    loss = LOSSES["cross_entropy"]
    Y, classes = loss.prepare_targets(np.array(["b", "a", "c", "a"]), 4, np.float64)
    np.testing.assert_array_equal(classes, ["a", "b", "c"])
    np.testing.assert_array_equal(Y, np.eye(3)[[1, 0, 2, 0]])
    Y2, classes2 = loss.prepare_targets(np.eye(3)[[1, 0, 2, 0]], 4, np.float64)
    np.testing.assert_array_equal(Y2, Y)
    np.testing.assert_array_equal(classes2, [0, 1, 2])
    scores = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    np.testing.assert_array_equal(loss.decision(scores, classes), ["b", "a"])
    np.testing.assert_allclose(loss.probabilities(scores).sum(axis=1), 1.0)


@pytest.mark.parametrize("name, y, match", [
    ("logistic", [0, 1, 2, 1], "binary labels"),
    ("logistic", [0.5, 1, 1, 0], "binary labels"),
    ("cross_entropy", [1.5, 0, 1, 0], "integer class labels"),
    ("cross_entropy", [1, 1, 1, 1], "at least 2 classes"),
    ("cross_entropy", [[1, 1], [0, 1], [1, 0], [0, 1]], "exactly one 1"),
    ("cross_entropy", [[2, 0], [0, 1], [1, 0], [0, 1]], "one-hot"),
    ("squared", [1.0, np.nan, 0.0, 1.0], "NaN"),
])
def test_targets_that_do_not_fit_the_loss(name, y, match):
    with pytest.raises(ValueError, match=f"^y:.*{match}"):
        LOSSES[name].prepare_targets(np.array(y), 4, np.float64)


def test_cross_entropy_value_keeps_float64_accuracy_on_float32_logits(rng):
    # Large logits, small loss: the sums of logsumexp(z) and of z_y nearly
    # cancel; summed apart in float32 they lost ~5e-4 of the value (a
    # certificate then showed a negative duality gap).
    n, c = 2000, 5
    labels = rng.integers(0, c, n)
    Y = np.eye(c)[labels]
    Z = rng.standard_normal((n, c)) * 3.0 + 12.0 * Y
    Z32 = Z.astype(np.float32)
    exact = sum(np.log(np.sum(np.exp(z.astype(np.float64) - z[k])))
                for z, k in zip(Z32, labels, strict=True))
    value = LOSSES["cross_entropy"].value(Z32, Y.astype(np.float32))
    assert value == pytest.approx(exact, rel=1e-12)
