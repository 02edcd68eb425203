"""Saved models: exact round trips without pickle, versioning, PyTorch export."""

import dataclasses
import json

import numpy as np
import pytest

import cvxnn
from cvxnn import io
from cvxnn.core.solution import Solution
from cvxnn.estimators import ConvexReLUClassifier, ConvexReLURegressor

SOLVER = "CLARABEL"


@pytest.fixture
def data():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((36, 3))
    y = np.abs(X[:, 0]) - X[:, 2]
    return X, y


def _assert_same_solution(a, b):
    for name in ("U", "V", "W"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)  # bit-identical
    for name in ("status", "objective", "solver", "solve_time", "n_iter",
                 "message", "certificate"):
        x, y = getattr(a, name), getattr(b, name)
        assert x == y or (x != x and y != y), name  # nan == nan here
    pa, pb = a.problem, b.problem
    for name in ("X", "y", "patterns", "gates"):
        assert getattr(pa, name).dtype == getattr(pb, name).dtype
        np.testing.assert_array_equal(getattr(pa, name), getattr(pb, name))
    assert repr(pa) == repr(pb) and pa.bias == pb.bias
    assert (pa.classes is None) == (pb.classes is None)
    if pa.classes is not None:
        np.testing.assert_array_equal(pa.classes, pb.classes)


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_solution_round_trip(tmp_path, data, formulation, dtype):
    X, y = data
    problem = cvxnn.build_problem(X.astype(dtype), y, formulation=formulation,
                                  n_gates=8, bias=True, lam=1e-2)
    sol = problem.solve(SOLVER)
    sol.history = {"time": np.array([0.0, 0.5]), "objective": np.array([2.0, 1.0])}
    path = tmp_path / "sol.npz"
    io.save_solution(path, sol)
    loaded = io.load_solution(path)
    _assert_same_solution(sol, loaded)
    for key in sol.history:
        np.testing.assert_array_equal(sol.history[key], loaded.history[key])
    if formulation == "relu":
        for m, n in zip(sol.multipliers, loaded.multipliers, strict=True):
            np.testing.assert_array_equal(m, n)
    assert loaded.info == pytest.approx(sol.info)
    # Everything needed to recompute: objective, certificate and predictions.
    assert loaded.problem.objective(**loaded.blocks) == sol.objective
    assert cvxnn.certificate(loaded.problem, **loaded.blocks,
                             **({"multipliers": loaded.multipliers}
                                if formulation == "relu" else {})) == sol.certificate
    np.testing.assert_array_equal(loaded.predict(X), sol.predict(X))


def test_file_loads_with_plain_numpy(tmp_path, data):
    X, y = data
    sol = cvxnn.build_problem(X, y, n_gates=5).solve(SOLVER)
    path = tmp_path / "plain.npz"
    io.save(path, sol)
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(str(f["__cvxnn__"]))
        np.testing.assert_array_equal(f["U"], sol.U)
    assert header["kind"] == "solution" and header["format_version"] == 1
    assert path.exists() and not (tmp_path / "plain.npz.npz").exists()


def test_classification_problem_and_failed_solution(tmp_path, data):
    X, y = data
    problem = cvxnn.build_problem(X, (y > 0).astype(int), loss="logistic", n_gates=5)
    failed = Solution.failed(problem, status="solver_error", solver="X",
                             solve_time=0.25, message="it broke")
    io.save(tmp_path / "f.npz", failed)
    loaded = io.load(tmp_path / "f.npz")
    _assert_same_solution(failed, loaded)
    assert np.isnan(loaded.objective) and loaded.certificate is None


def test_logistic_problem_of_several_outputs_round_trip(tmp_path, data):
    X, _ = data
    problem = cvxnn.build_problem(X, (X > 0).astype(int), loss="logistic", lam=1e-2,
                                  n_gates=5)
    assert problem.n_outputs == 3 and problem.classes.size == 2
    sol = problem.solve(SOLVER)
    io.save(tmp_path / "s.npz", sol)
    loaded = io.load(tmp_path / "s.npz")
    _assert_same_solution(sol, loaded)
    np.testing.assert_array_equal(loaded.predict(X), sol.predict(X))


def test_unregularized_solution_and_estimator_round_trip(tmp_path, data):
    """regularizer=None is stored as null; its files were refused on load."""
    X, y = data
    sol = cvxnn.build_problem(X, y, regularizer=None, lam=0.0, n_gates=5).solve(SOLVER)
    io.save(tmp_path / "s.npz", sol)
    _assert_same_solution(sol, io.load(tmp_path / "s.npz"))
    est = cvxnn.ConvexReLURegressor(regularizer=None, lam=0.0, n_gates=5,
                                    solver=SOLVER).fit(X, y)
    io.save(tmp_path / "m.npz", est)
    np.testing.assert_array_equal(io.load(tmp_path / "m.npz").predict(X),
                                  est.predict(X))


def test_decomposed_solution_round_trip(tmp_path, data):
    X, y = data
    problem = cvxnn.build_problem(X, y, lam=1e-2, n_gates=5, bias=True,
                                  standardize=True)
    relu = cvxnn.decompose(problem, problem.solve(SOLVER))
    io.save(tmp_path / "d.npz", relu)
    loaded = io.load(tmp_path / "d.npz")
    _assert_same_solution(relu, loaded)
    assert loaded.info["decomposition"] == relu.info["decomposition"]
    np.testing.assert_array_equal(loaded.predict(X), relu.predict(X))


def test_network_round_trip(tmp_path, data):
    X, y = data
    for formulation in ("gated_relu", "relu"):
        net = cvxnn.build_problem(X, y, formulation=formulation, n_gates=6,
                                  bias=True).solve(SOLVER).network
        io.save_network(tmp_path / "n.npz", net)
        loaded = io.load(tmp_path / "n.npz")
        for name in ("W1", "W2", "gates"):
            a, b = getattr(net, name), getattr(loaded, name)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_network_with_output_bias_round_trip(tmp_path, data):
    X, y = data
    net = cvxnn.ConvexReLURegressor(n_gates=6, solver=SOLVER).fit(X, y + 5).network_
    assert net.b2 is not None
    io.save_network(tmp_path / "n.npz", net)
    loaded = io.load(tmp_path / "n.npz")
    np.testing.assert_array_equal(loaded.b2, net.b2)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_regressor_round_trip(tmp_path, data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=["u", "v", "w"])
    G = np.random.default_rng(0).standard_normal((4, 6))
    est = ConvexReLURegressor(gates=G, lam=1e-2, solver=SOLVER,
                              solver_options={"max_iter": 200}).fit(frame, y)
    io.save_model(tmp_path / "m.npz", est, metadata={"note": "hi"})
    loaded = io.load(tmp_path / "m.npz")
    assert type(loaded) is ConvexReLURegressor
    params = loaded.get_params()
    np.testing.assert_array_equal(params.pop("gates"), G)
    assert params == {k: v for k, v in est.get_params().items() if k != "gates"}
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    assert loaded.feature_names_in_.dtype == object
    np.testing.assert_array_equal(loaded.predict(frame), est.predict(frame))
    _assert_same_solution(est.solution_, loaded.solution_)
    assert loaded.n_active_ == est.n_active_ and loaded.n_iter_ == est.n_iter_
    assert io.load_metadata(tmp_path / "m.npz") == {"note": "hi"}
    # A loaded model refits like the original.
    refit = loaded.fit(frame, y)
    np.testing.assert_allclose(refit.predict(frame), est.predict(frame))


@pytest.mark.parametrize("kind", [int, bool, np.float16])
def test_integer_boolean_and_half_gate_arrays_are_saved_as_float64(tmp_path, data,
                                                                   kind):
    """They fit (as float64), and saving refused them: the file would hold
    an array that loading refuses."""
    X, y = data
    G = np.sign(np.random.default_rng(0).standard_normal((4, 6))).astype(kind)
    est = ConvexReLURegressor(gates=G, n_gates=6, solver="fast").fit(X, y)
    io.save(tmp_path / "m.npz", est)
    loaded = io.load(tmp_path / "m.npz")
    assert loaded.gates.dtype == np.float64
    np.testing.assert_array_equal(loaded.gates, G.astype(np.float64))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_classifier_round_trip_string_labels(tmp_path, data):
    X, y = data
    labels = np.array(["a", "b", "c"], dtype=object)[np.digitize(y, [-0.5, 0.5])]
    est = ConvexReLUClassifier(n_gates=6, solver=SOLVER).fit(X, labels)
    io.save(tmp_path / "c.npz", est)
    loaded = io.load_model(tmp_path / "c.npz")
    assert loaded.classes_.dtype == est.classes_.dtype == object
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.loss_ == est.loss_ and loaded.certificate_ == est.certificate_


def test_future_version_and_foreign_files_are_refused(tmp_path, data):
    X, y = data
    sol = cvxnn.build_problem(X, y, n_gates=4).solve(SOLVER)
    meta, arrays = io.solution_parts(sol)
    header = {"format": "cvxnn", "format_version": io.FORMAT_VERSION + 1,
              "kind": "solution", "solution": meta}
    np.savez(tmp_path / "new.npz", __cvxnn__=np.array(json.dumps(header)), **arrays)
    with pytest.raises(ValueError, match="format version 2"):
        io.load(tmp_path / "new.npz")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a cvxnn file"):
        io.load(tmp_path / "other.npz")
    io.save(tmp_path / "s.npz", sol)
    with pytest.raises(ValueError, match="holds a solution, not a network"):
        io.load_network(tmp_path / "s.npz")


def test_loading_never_calls_what_a_file_names(tmp_path, data):
    X, y = data
    est = ConvexReLURegressor(n_gates=4, solver=SOLVER).fit(X, y)
    io.save(tmp_path / "m.npz", est)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        arrays = dict(f)
    header = json.loads(str(arrays.pop("__cvxnn__")))
    header["class"] = "register_gate_family"
    np.savez(tmp_path / "evil.npz", __cvxnn__=np.array(json.dumps(header)), **arrays)
    with pytest.raises(ValueError, match="unknown estimator class"):
        io.load(tmp_path / "evil.npz")


def test_unsavable_values_are_named(tmp_path, data):
    X, y = data
    sol = cvxnn.build_problem(X, y, n_gates=4).solve(SOLVER)
    sol.info["callback"] = object()
    with pytest.raises(TypeError, match="info\\['callback'\\]"):
        io.save(tmp_path / "x.npz", sol)
    est = ConvexReLURegressor(n_gates=4, solver=SOLVER,
                              gates=lambda X, n, rng: rng.standard_normal((4, n)))
    est.fit(X, y)
    with pytest.raises(ValueError, match="gates: a callable cannot be saved"):
        io.save(tmp_path / "x.npz", est)
    with pytest.raises(ValueError, match="not fitted"):
        io.save_model(tmp_path / "x.npz", ConvexReLURegressor())
    with pytest.raises(TypeError, match="solution"):
        io.save_solution(tmp_path / "x.npz", est)


def test_a_path_that_is_not_a_file_name_is_refused_before_opening(tmp_path, data):
    # open() takes an int (or bool) as a descriptor of a file already open
    X, y = data
    sol = cvxnn.build_problem(X, y, n_gates=4).solve(SOLVER)
    other = tmp_path / "other.txt"
    with open(other, "w") as handle:
        for path in (handle.fileno(), True, None, 2.5):
            with pytest.raises(TypeError, match="path: expected a file name"):
                io.save(path, sol)
            with pytest.raises(TypeError, match="path: expected a file name"):
                io.load(path)
        handle.write("still open")
    assert other.read_text() == "still open"
    with pytest.raises(TypeError, match="obj: expected a Solution"):
        io.save(tmp_path / "x.npz", 3)
    io.save(tmp_path / "x.npz", sol)
    with pytest.raises(TypeError, match="allow_no_checksum: expected True or False"):
        io.load(tmp_path / "x.npz", allow_no_checksum="no")


@pytest.mark.parametrize(("params", "fragment"), [
    ({"n_gates": -1}, "n_gates: must be >= 1"),
    ({"tol": "x"}, "tol: expected a number"),
    ({"solver": 5}, "solver: expected a solver name"),
    ({"validation_fraction": 7}, "validation_fraction: expected a number"),
    ({"gates": "bogus"}, "gates: unknown value 'bogus'"),
    ({"loss": "logistic"}, "'params.loss' is 'logistic' but the solution"),
    ({"lam": 0.5}, "'params.lam' is 0.5 but the solution"),
])
def test_settings_that_would_not_load_are_not_saved(tmp_path, data, params,
                                                    fragment):
    X, y = data
    est = ConvexReLURegressor(n_gates=4, solver=SOLVER).fit(X, y)
    est.set_params(**params)
    with pytest.raises((TypeError, ValueError)) as info:
        io.save(tmp_path / "m.npz", est)
    assert fragment in str(info.value)
    assert not (tmp_path / "m.npz").exists()


def test_network_that_would_not_load_is_not_saved(tmp_path):
    net = cvxnn.TwoLayerNetwork(W1=np.zeros((3, 4)), W2=np.zeros((1, 3)),
                                gates=None, bias=False)
    net.W2 = np.zeros((1, 5))  # checked when built, not when changed
    with pytest.raises(ValueError, match=r"network: cannot be saved, .*'W2' has "
                       r"shape \(1, 5\) but 'W1' has 3 neurons"):
        io.save(tmp_path / "n.npz", net)
    assert not (tmp_path / "n.npz").exists()


def test_certificate_fields_survive_exactly(tmp_path, data):
    X, y = data
    sol = cvxnn.build_problem(X, y, n_gates=6, lam=1e-2).solve(SOLVER)
    io.save(tmp_path / "s.npz", sol)
    loaded = io.load(tmp_path / "s.npz")
    for field in dataclasses.fields(sol.certificate):
        a = getattr(sol.certificate, field.name)
        b = getattr(loaded.certificate, field.name)
        assert a == b or (a is None and b is None), field.name


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_export_predicts_the_same(data, formulation, bias, dtype):
    torch = pytest.importorskip("torch")
    from cvxnn.export import to_torch

    X, y = data
    sol = cvxnn.build_problem(X.astype(dtype), y, formulation=formulation,
                              n_gates=8, bias=bias).solve(SOLVER)
    module = to_torch(sol)
    X_new = np.random.default_rng(9).standard_normal((50, 3)).astype(dtype)
    with torch.no_grad():
        out = module(torch.from_numpy(X_new)).numpy()
    assert out.dtype == dtype
    tol = {np.float64: 1e-12, np.float32: 1e-5}[dtype]
    ref = sol.predict(X_new)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * np.abs(ref).max())
    assert isinstance(module.hidden, torch.nn.Linear)


def test_torch_export_of_classifier(data):
    torch = pytest.importorskip("torch")
    from cvxnn.export import to_torch

    X, y = data
    est = ConvexReLUClassifier(n_gates=6, solver=SOLVER).fit(X, y > 0)
    with torch.no_grad():
        logits = to_torch(est)(torch.from_numpy(X)).numpy()[:, 0]
    np.testing.assert_allclose(logits, est.decision_function(X), rtol=1e-12,
                               atol=1e-12)
    with pytest.raises(TypeError, match="network"):
        to_torch(ConvexReLUClassifier())


def test_torch_export_of_regressor_keeps_its_intercept(data):
    torch = pytest.importorskip("torch")
    from cvxnn.export import to_torch

    X, y = data
    est = cvxnn.ConvexReLURegressor(n_gates=6, solver=SOLVER).fit(X, y + 100.0)
    with torch.no_grad():
        out = to_torch(est)(torch.from_numpy(X)).numpy()[:, 0]
    np.testing.assert_allclose(out, est.predict(X), rtol=1e-12)


def test_an_estimator_on_a_torch_device_is_saved_by_the_device_name(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    est = ConvexReLURegressor(n_gates=4, device=torch.device("cpu")).fit(X, X[:, 0])
    cvxnn.save(tmp_path / "m.npz", est)
    back = cvxnn.load(tmp_path / "m.npz")
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def test_an_auto_model_fitted_where_auto_was_cvxpy_loads_anywhere(tmp_path, data,
                                                                  monkeypatch):
    # solver="auto" resolves to CLARABEL where cvxnn_fast is missing; its
    # CLARABEL options must not make the file invalid where "fast" is there
    import cvxnn.estimators.base as base

    X, y = data
    monkeypatch.setattr(base, "default_solver", lambda: "CLARABEL")
    est = ConvexReLURegressor(n_gates=4, solver_options={"tol_gap_abs": 1e-9})
    est.fit(X, y)
    assert est.solution_.solver == "CLARABEL"
    monkeypatch.undo()
    io.save(tmp_path / "auto.npz", est)
    again = io.load(tmp_path / "auto.npz")
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
