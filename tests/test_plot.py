"""Plot helpers render to PNG with the Agg backend and draw the data given."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cvxnn.plot import plot_convergence, plot_regularization_path  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _history(rate):
    t = np.linspace(0.0, 1.0, 20)
    return {"time": t, "objective": 1.0 + np.exp(-rate * t),
            "optimality": np.exp(-rate * t)}


def test_convergence_plot_draws_histories(tmp_path):
    runs = [_history(5.0), _history(10.0)]
    ax = plot_convergence(runs, labels=["slow", "fast"])
    lines = ax.get_lines()
    assert len(lines) == 2
    for line, run in zip(lines, runs, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), run["time"])
        np.testing.assert_array_equal(line.get_ydata(), run["optimality"])
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["slow", "fast"]
    path = tmp_path / "conv.png"
    ax.figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_convergence_plot_of_a_solution_against_iterations():
    class Run:  # what a Solution exposes
        solver = "fast"
        history = _history(3.0)

    ax = plot_convergence(Run(), x="iteration", y="objective")
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), np.arange(20))
    assert ax.get_legend().get_texts()[0].get_text() == "fast"


def test_convergence_plot_stays_logarithmic_across_a_nan():
    """One NaN entry switched the axis to linear, hiding the decay."""
    ax = plot_convergence({"time": [0.0, 1.0, 2.0], "optimality": [1.0, np.nan, 0.01]})
    assert ax.get_yscale() == "log"
    ax = plot_convergence({"time": [0.0, 1.0], "optimality": [1.0, 0.0]})
    assert ax.get_yscale() == "linear"


def test_convergence_plot_errors():
    with pytest.raises(ValueError, match="no history"):
        plot_convergence({})
    with pytest.raises(ValueError, match="no 'gap'"):
        plot_convergence(_history(1.0), y="gap")
    with pytest.raises(ValueError, match="labels"):
        plot_convergence([_history(1.0)], labels=["a", "b"])


def test_regularization_path_plot(tmp_path):
    lams = np.logspace(-4, 0, 5)
    active = np.array([30, 20, 8, 2, 0])
    score = np.array([0.99, 0.97, 0.9, 0.7, 0.5])
    ax = plot_regularization_path(lams, active, score=score, score_label="accuracy")
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), active)
    np.testing.assert_array_equal(ax.score_axis.get_lines()[0].get_ydata(), score)
    assert ax.get_xscale() == "log" and ax.score_axis.get_ylabel() == "accuracy"
    ax.figure.savefig(tmp_path / "path.png")
    assert (tmp_path / "path.png").stat().st_size > 1000


def test_regularization_path_errors():
    with pytest.raises(ValueError, match="lams"):
        plot_regularization_path([0.0, 1.0], [1, 2])
    with pytest.raises(ValueError, match="n_active"):
        plot_regularization_path([0.1, 1.0], [1, 2, 3])
