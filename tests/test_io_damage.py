"""Damaged model files fail loudly: one test per kind of damage and kind of file.

Each damaged archive is built by rewriting a saved file with numpy or
zipfile; loading it must raise ``ModelFileError`` whose message starts with
the file's name and says what is wrong. Valid files still load exactly.
"""

import json
import zipfile

import numpy as np
import pytest

import cvxnn
import cvxnn.estimators.base
from cvxnn import io
from cvxnn.cli.commands import main
from cvxnn.estimators import (
    ConvexReLUClassifier,
    ConvexReLURegressor,
    ConvexReLURegressorCV,
)
from cvxnn.io.archive import with_checksum

SOLVER = "CLARABEL"


# --- files to damage ----------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One valid file of each kind (and the objects saved), built once."""
    root = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 3))
    y = X[:, 0] - np.abs(X[:, 1]) + 0.1 * rng.standard_normal(30)
    gated = cvxnn.build_problem(X, y, n_gates=6, bias=True, lam=1e-2).solve(SOLVER)
    relu = cvxnn.build_problem(X.astype(np.float32), y, formulation="relu",
                               n_gates=6, lam=1e-2).solve(SOLVER)
    labels = np.array(["lo", "mid", "hi"], dtype=object)[np.digitize(y, [-0.5, 0.5])]
    est = ConvexReLUClassifier(n_gates=6, solver=SOLVER).fit(X, labels)
    objects = {"solution": gated, "relu": relu, "network": relu.network,
               "estimator": est,
               "whitened": ConvexReLURegressor(n_gates=6, whiten=True,
                                               solver=SOLVER).fit(X, y),
               "cv": ConvexReLURegressorCV(n_gates=6, n_lams=3,
                                           solver=SOLVER).fit(X, y)}
    paths = {}
    for name, obj in objects.items():
        paths[name] = root / f"{name}.npz"
        io.save(paths[name], obj)
    io.save_model(paths["estimator"], est, metadata={"target": "label"})
    return {"paths": paths, "objects": objects, "X": X, "labels": labels}


def _contents(path):
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    return json.loads(str(arrays.pop(io.HEADER))), arrays


def _rewrite(path, header, arrays):
    np.savez(path, **{io.HEADER: np.array(json.dumps(header))}, **arrays)
    return path


def _damaged(saved, kind, tmp_path, edit_arrays=None, edit_header=None):
    """A copy of the valid ``kind`` file with arrays and header edited."""
    header, arrays = _contents(saved["paths"][kind])
    if edit_arrays is not None:
        edit_arrays(arrays)
    if edit_header is not None:
        edit_header(header)
    return _rewrite(tmp_path / f"bad_{kind}.npz", header, arrays)


def _forged(saved, kind, tmp_path, edit_arrays=None, edit_header=None):
    """As :func:`_damaged`, with the checksum recomputed (anyone can): only the
    checks of meaning can refuse it."""
    path = _damaged(saved, kind, tmp_path, edit_arrays, edit_header)
    header, arrays = _contents(path)
    del header["checksum"]
    return _rewrite(path, with_checksum(header, arrays), arrays)


# Edits of the arrays (_put, _poke, _drop) and of the header (_field).
def _put(name, value):
    """Set array ``name`` to ``value``, or to ``value(old array)``."""
    return lambda a: a.update({name: value(a[name]) if callable(value) else value})


def _poke(name, value):
    """Set the first entry of array ``name`` to ``value``."""
    def edit(arrays):
        arr = arrays[name].copy()
        arr.flat[0] = value
        arrays[name] = arr
    return edit


def _drop(*names):
    return lambda a: [a.pop(name) for name in names]


def _field(*keys, **values):
    """Update the metadata object at ``header[keys[0]][keys[1]]...``."""
    def edit(header):
        for key in keys:
            header = header[key]
        header.update(values)
    return edit


def _refused(path, *fragments, loader=io.load, **kwargs):
    with pytest.raises(io.ModelFileError) as info:
        loader(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert info.value.path == str(path)
    for fragment in fragments:
        assert fragment in message, message
    return message


# Where the weights of each kind of file live.
WEIGHTS = {"solution": "U", "relu": "V", "network": "W1", "estimator": "solution/U"}
KINDS = list(WEIGHTS)


# --- valid files --------------------------------------------------------------
@pytest.mark.parametrize("kind", [*KINDS, "whitened", "cv"])
def test_valid_files_load_exactly(saved, kind):
    loaded = io.load(saved["paths"][kind])
    original = saved["objects"][kind]
    estimator = kind in ("estimator", "whitened", "cv")
    net = original if kind == "network" else (
        original.network_ if estimator else original.network)
    net_loaded = loaded if kind == "network" else (
        loaded.network_ if estimator else loaded.network)
    for name in ("W1", "W2"):
        a, b = getattr(net, name), getattr(net_loaded, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    if estimator:
        np.testing.assert_array_equal(loaded.predict(saved["X"]),
                                      original.predict(saved["X"]))
        assert loaded.predict(saved["X"]).tolist() == \
            original.predict(saved["X"]).tolist()
    header, _ = _contents(saved["paths"][kind])
    assert header["format_version"] == 1 and set(header["checksum"]) == {
        "algorithm", "arrays", "header"}


def test_standardized_problem_keeps_its_scales(tmp_path, saved):
    X = saved["X"] * np.array([1.0, 100.0, 0.01])
    sol = cvxnn.build_problem(X, X[:, 0], n_gates=5, standardize=True).solve(SOLVER)
    io.save(tmp_path / "s.npz", sol)
    loaded = io.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.problem.input_scale, sol.problem.input_scale)
    np.testing.assert_array_equal(loaded.predict(X), sol.predict(X))


def test_error_type_is_a_value_error():
    assert issubclass(io.ModelFileError, ValueError)
    assert io.ModelFileError("broken", "m.npz").args == ("m.npz: broken",)


# --- missing arrays -----------------------------------------------------------
@pytest.mark.parametrize(("kind", "fragment"), [
    ("solution", "status 'optimal' comes with weights, but the file holds none"),
    ("relu", "the file holds 'U', 'W' (expected 'U' and 'V' and 'W')"),
    ("network", "array 'W1' is missing"),
    ("estimator", "status 'optimal' comes with weights, but the file holds none"),
])
def test_missing_weights(saved, tmp_path, kind, fragment):
    def drop(arrays):
        prefix = "solution/" if kind == "estimator" else ""
        for name in ("U", "V", "W"):
            if kind != "relu" or name == "V":
                arrays.pop(prefix + name, None)
        arrays.pop("W1", None)
    _refused(_damaged(saved, kind, tmp_path, drop), fragment)


@pytest.mark.parametrize(("kind", "name"), [
    ("solution", "problem/patterns"), ("relu", "multipliers/1"),
    ("network", "W2"), ("estimator", "fitted/classes_")])
def test_missing_other_arrays(saved, tmp_path, kind, name):
    path = _damaged(saved, kind, tmp_path, lambda a: a.pop(name))
    _refused(path, repr(name), "missing")


def test_missing_optional_array_is_caught_by_the_checksum(saved, tmp_path):
    path = _damaged(saved, "relu", tmp_path, _drop("multipliers/0", "multipliers/1"))
    _refused(path, "array 'multipliers/0' is missing (the checksum")


# --- wrong shapes -------------------------------------------------------------
@pytest.mark.parametrize(("kind", "name", "fragment"), [
    ("solution", "U", "has shape (1, 5, 4) but the problem has n_outputs=1, P=6, d=4"),
    ("relu", "W", "P=6, d=3"),
    ("network", "W2", "'W1' has"),
    ("estimator", "solution/U", "has shape (3, 5, 4)"),
])
def test_weights_truncated_to_fewer_patterns(saved, tmp_path, kind, name, fragment):
    def truncate(arrays):
        arr = arrays[name]
        arrays[name] = arr[:, :-1] if arr.ndim == 3 else arr[:, :-1]
    message = _refused(_damaged(saved, kind, tmp_path, truncate), repr(name))
    assert fragment in message


def test_consistently_truncated_problem_contradicts_recorded_sizes(saved, tmp_path):
    def truncate(arrays):
        for name in ("U", "problem/gates", "problem/patterns"):
            arrays[name] = arrays[name][..., :-1] if name != "U" else \
                arrays[name][:, :-1]
    _refused(_damaged(saved, "solution", tmp_path, truncate),
             "the arrays give n_patterns=5 but the metadata says n_patterns=6")


# --- wrong dtypes -------------------------------------------------------------
@pytest.mark.parametrize(("kind", "name", "dtype", "fragment"), [
    ("solution", "U", str, "must hold float32 or float64"),
    ("solution", "problem/patterns", np.float64, "must hold bool"),
    ("relu", "V", np.float64, "has dtype float64 but 'problem/X' has float32"),
    ("network", "W1", str, "must hold float32 or float64"),
    ("estimator", "solution/problem/X", str, "must hold float32 or float64"),
    ("estimator", "solution/history/x", str, "numeric"),
])
def test_wrong_dtype(saved, tmp_path, kind, name, dtype, fragment):
    def retype(arrays):
        base = arrays.get(name, np.arange(3.0))
        arrays[name] = base.astype(dtype)
    path = _damaged(saved, kind, tmp_path, retype)
    _refused(path, repr(name), fragment)


# --- non-finite values --------------------------------------------------------
@pytest.mark.parametrize(("kind", "name", "value"), [
    ("solution", "U", np.nan), ("relu", "W", np.inf), ("network", "W2", np.nan),
    ("estimator", "solution/U", -np.inf), ("solution", "problem/X", np.nan),
    ("estimator", "solution/problem/gates", np.nan),
])
def test_non_finite_values(saved, tmp_path, kind, name, value):
    def poison(arrays):
        arr = arrays[name].copy()
        arr.flat[arr.size // 2] = value
        arrays[name] = arr
    _refused(_damaged(saved, kind, tmp_path, poison), repr(name),
             "1 non-finite value")


# --- edited metadata ----------------------------------------------------------
def _solution_meta(header):
    return header["solution"]


@pytest.mark.parametrize(("kind", "edit"), [
    ("solution", lambda h: _solution_meta(h)["problem"].update(lam=0.02)),
    ("solution", lambda h: _solution_meta(h).update(
        objective=_solution_meta(h)["objective"] * 1.5,
        certificate={**_solution_meta(h)["certificate"],
                     "objective": _solution_meta(h)["objective"] * 1.5})),
    ("solution", lambda h: _solution_meta(h).update(solver="ECOS")),
    ("relu", lambda h: _solution_meta(h)["certificate"].update(relative_gap=0.0)),
    ("network", lambda h: h.update(cvxnn_version="9.9")),
    ("network", lambda h: h.update(bias=True)),
    ("estimator", lambda h: h["metadata"].update(target="other")),
    ("estimator", lambda h: h["params"].update(n_gates=7)),
])
def test_edited_metadata_fails_the_checksum(saved, tmp_path, kind, edit):
    path = _damaged(saved, kind, tmp_path, edit_header=edit)
    _refused(path, "the metadata (JSON header) does not match its checksum")
    if kind == "estimator":
        _refused(path, "does not match its checksum", loader=io.load_metadata)


@pytest.mark.parametrize(("kind", "edit", "fragment"), [
    ("network", lambda h: h.update(activation="gated_relu"),
     "the metadata says activation='gated_relu' but the file lacks the array"),
    ("estimator", lambda h: h["params"].update(lam=0.5),
     "'params.lam' is 0.5 but the solution was computed with lam=0.001"),
    ("estimator", lambda h: h["fitted"].update(n_active_=2), "'fitted.n_active_'"),
    ("estimator", lambda h: h["fitted"].update(loss_="logistic"), "'fitted.loss_'"),
    ("estimator", lambda h: h.update({"class": "ConvexReLURegressor"}), "_y_1d"),
    ("solution", lambda h: _solution_meta(h)["problem"].update(loss="hinge"),
     "'solution.problem.loss' must be one of"),
    ("solution", lambda h: _solution_meta(h)["problem"].update(lam=-1.0), "lam"),
    ("solution", lambda h: _solution_meta(h)["problem"]["sizes"].update(n_samples=31),
     "n_samples=30 but the metadata says n_samples=31"),
])
def test_edited_metadata_contradicting_the_arrays(saved, tmp_path, kind, edit,
                                                  fragment):
    _refused(_damaged(saved, kind, tmp_path, edit_header=edit), fragment)


def test_files_without_checksum(saved, tmp_path):
    def legacy(header):
        del header["checksum"]
    for kind in KINDS:
        path = _damaged(saved, kind, tmp_path, edit_header=legacy)
        hint = "save_model" if kind == "estimator" else "cvxnn.save("
        _refused(path, "has no checksum", "allow_no_checksum=True", hint)
        loaded = io.load(path, allow_no_checksum=True)  # every other check passes
        io.save(tmp_path / "again.npz", loaded)
        assert "checksum" in _contents(tmp_path / "again.npz")[0]
    # Without a checksum the recomputed objective still catches a changed lam.
    path = _damaged(saved, "solution", tmp_path, edit_header=lambda h: (
        legacy(h), _solution_meta(h)["problem"].update(lam=0.0101)))
    _refused(path, "differs from", "recomputed from the stored weights",
             allow_no_checksum=True)


def test_checks_that_need_no_checksum(saved, tmp_path):
    """Inconsistencies a hand-built file (checksum removed) cannot hide."""
    def shift_v(arrays):
        arrays["V"] = arrays["V"] * np.float32(2)
    path = _damaged(saved, "relu", tmp_path, shift_v,
                    lambda h: h.pop("checksum"))
    _refused(path, "array 'U' is not 'V' - 'W'", allow_no_checksum=True)
    path = _damaged(saved, "estimator", tmp_path, edit_header=lambda h: (
        h.pop("checksum"), h["params"].update(evil=1)))
    _refused(path, "does not hold the parameters of ConvexReLUClassifier "
             "(differs in: evil)", allow_no_checksum=True)
    path = _damaged(saved, "estimator", tmp_path, edit_header=lambda h: (
        h.pop("checksum"), h["fitted"].update(predict=1)))
    _refused(path, "'fitted' holds unknown attributes (predict)",
             allow_no_checksum=True)


# --- forged files: edited, checksum recomputed ---------------------------------
NAN, INF = float("nan"), float("inf")
FORGERIES = {
    # fitted classes: order is the meaning of every prediction
    "classes reversed": ("estimator", _put("fitted/classes_", lambda c: c[::-1]),
                         None, "'fitted/classes_' must hold sorted and distinct"),
    "classes repeated": ("estimator", _put("fitted/classes_",
                                           np.array(["hi", "hi", "mid"])),
                         None, "'fitted/classes_' must hold sorted and distinct"),
    "classes nan": ("estimator", _put("fitted/classes_", np.array([0.0, 1.0, NAN])),
                    None, "'fitted/classes_' has 1 non-finite value"),
    "feature named twice": ("estimator", _put("fitted/feature_names_in_",
                                              np.array(["a", "a", "b"])),
                            None, "'fitted/feature_names_in_' names a feature twice"),
    "problem classes": ("estimator", _put("solution/problem/classes",
                                          np.array([5, 6, 7])),
                        None, "'solution/problem/classes' is [5, 6, 7] but"),
    "problem classes reversed": ("estimator", _put("solution/problem/classes",
                                                   lambda c: c[::-1]), None,
                                 "'solution/problem/classes' must hold sorted"),
    # whitening
    "whiten mean nan": ("whitened", _poke("fitted/whiten_mean_", NAN), None,
                        "'fitted/whiten_mean_' has 1 non-finite value"),
    "whiten components inf": ("whitened", _poke("fitted/whiten_components_", INF),
                              None, "'fitted/whiten_components_' has 1 non-finite"),
    "whiten false": ("whitened", None, _field("params", whiten=False),
                     "'params.whiten' is false but the file holds"),
    "whiten true": ("estimator", None, _field("params", whiten=True),
                    "'params.whiten' is true but the file holds no"),
    "whiten mean alone": ("whitened", _drop("fitted/whiten_components_"),
                          _field("params", whiten=False),
                          "'fitted/whiten_mean_' comes without"),
    # a regressor's intercept (files without one load: written before it)
    "intercept nan": ("whitened", _poke("fitted/intercept_", NAN), None,
                      "'fitted/intercept_' has 1 non-finite value"),
    "intercept per output": ("cv", _put("fitted/intercept_", np.zeros(2)), None,
                             "'fitted/intercept_' has shape (2,)"),
    "intercept float32": ("cv", _put("fitted/intercept_",
                                     lambda v: v.astype(np.float32)), None,
                          "'fitted/intercept_' has dtype float32 but"),
    "intercept of classifier": ("estimator", _put("fitted/intercept_", np.zeros(3)),
                                None, "array 'fitted/intercept_' does not belong"),
    # the path of a CV model; CV attributes on a plain one
    "lams text": ("cv", _put("fitted/lams_", lambda v: v.astype(str)), None,
                  "'fitted/lams_' has dtype <U"),
    "lams nan": ("cv", _poke("fitted/lams_", NAN), None,
                 "'fitted/lams_' has 1 non-finite value"),
    "lams negative": ("cv", _put("fitted/lams_", lambda v: -v), None,
                      "'fitted/lams_' has lams < 0"),
    "scores short": ("cv", _put("fitted/scores_", lambda v: v[:-1]), None,
                     "'fitted/scores_' has shape (2,)"),
    "path missing": ("cv", _drop("fitted/lams_", "fitted/scores_"), None,
                     "array 'fitted/lams_' is missing"),
    "lam not on path": ("cv", _put("fitted/lams_", lambda v: 2 * v), None,
                        "'fitted.lam_' is"),
    "lam_ on plain": ("whitened", None, _field("fitted", lam_=1e-3),
                      "'fitted' holds lam_, which a ConvexReLURegressor"),
    "loss_ on plain": ("whitened", None, _field("fitted", loss_="squared"),
                       "'fitted' holds loss_, which a ConvexReLURegressor"),
    "lams_ on plain": ("whitened", _put("fitted/lams_", np.ones(1)), None,
                       "array 'fitted/lams_' does not belong"),
    # the solution's metadata
    "status": ("solution", None, _field("solution", status="bogus"),
               "'solution.status' must be one of"),
    "solve time": ("solution", None, _field("solution", solve_time=-5.0),
                   "'solution.solve_time' must be a number >= 0"),
    "gap nan": ("solution", None, _field("solution", "certificate",
                                         relative_gap=NAN),
                "'solution.certificate.relative_gap' must be"),
    "gap inf": ("solution", None, _field("solution", "certificate",
                                         duality_gap=INF),
                "'solution.certificate.duality_gap' must be"),
    "kkt negative": ("solution", None, _field("solution", "certificate",
                                              kkt_residual=-1.0),
                     "'solution.certificate.kkt_residual' must be"),
    "cones of gated": ("solution", None, _field("solution", "certificate",
                                                cone_violation=0.0),
                       "'solution.certificate.cone_violation' must be null"),
    # the estimator's settings, judged by its own checks
    "n_gates": ("whitened", None, _field("params", n_gates=-1),
                "'params.n_gates' holds"),
    "tol": ("whitened", None, _field("params", tol="x"), "'params.tol' holds"),
    "solver": ("whitened", None, _field("params", solver=5),
               "'params.solver' holds"),
    "loss of regressor": ("whitened", None, _field("params", loss="logistic"),
                          "'params.loss' is 'logistic' but the solution"),
    "random_state": ("whitened", None, _field("params", random_state="x"),
                     "'params.random_state' holds"),
    "gate_options": ("whitened", None, _field("params", gate_options=[1]),
                     "'params.gate_options' holds"),
    "gates": ("whitened", None, _field("params", gates="bogus"),
              "'params.gates' holds"),
    "validation_fraction": ("whitened", None, _field("params",
                                                     validation_fraction=7),
                            "'params.validation_fraction' holds"),
    "device": ("whitened", None, _field("params", device="cuda", solver="CLARABEL"),
               "'params.device' holds"),
    "device name": ("whitened", None, _field("params", device="gpu"),
                    "'params.device' holds"),
    "loss of classifier": ("estimator", None, _field("params", loss="logistic"),
                           "'params.loss' holds"),
    "other loss of classifier": ("estimator", None, _field("params", loss="squared"),
                                 "'params.loss' is 'squared' but the solution"),
    "n_lams": ("cv", None, _field("params", n_lams=0), "'params.n_lams' holds"),
    "cv": ("cv", None, _field("params", cv=7.5), "'params.cv' holds"),
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_files(saved, tmp_path, forgery):
    kind, edit_arrays, edit_header, fragment = FORGERIES[forgery]
    _refused(_forged(saved, kind, tmp_path, edit_arrays, edit_header), fragment)


def test_a_regressor_saved_before_the_intercept_loads_without_one(saved, tmp_path):
    """Files written before the regressors fitted around an intercept have
    none: they load with the network they had (no output bias)."""
    loaded = io.load(_forged(saved, "cv", tmp_path, _drop("fitted/intercept_")))
    assert not hasattr(loaded, "intercept_") and loaded.network_.b2 is None
    np.testing.assert_allclose(loaded.predict(saved["X"]),
                               loaded.solution_.predict(saved["X"])[:, 0])


def test_forgeries_that_could_be_genuine_load(saved, tmp_path, monkeypatch):
    # A ReLU gap below zero: cones violated within cone_tol.
    io.load(_forged(saved, "relu", tmp_path, edit_header=_field(
        "solution", "certificate", relative_gap=-1e-3)))
    # device with solver="auto" needs the compiled solver to fit, not to load.
    monkeypatch.setattr(cvxnn.estimators.base, "default_solver", lambda: "CLARABEL")
    io.load(_forged(saved, "whitened", tmp_path,
                    edit_header=_field("params", device="cuda", solver="auto")))


# --- truncated and non-zip files ----------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_archive(saved, tmp_path, kind, keep):
    data = saved["paths"][kind].read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[:int(keep * len(data))])
    _refused(path, "cannot be read as a .npz archive", "truncated")


def test_files_that_are_not_archives(tmp_path):
    (tmp_path / "text.npz").write_text("W1,W2\n1,2\n")
    _refused(tmp_path / "text.npz", "is not a cvxnn file (not a .npz archive)")
    np.save(tmp_path / "array.npy", np.ones(3))
    _refused(tmp_path / "array.npy", "is not a cvxnn file (not a .npz archive)")
    (tmp_path / "empty.npz").write_bytes(b"")
    _refused(tmp_path / "empty.npz", "is not a cvxnn file (not a .npz archive)")
    np.savez(tmp_path / "foreign.npz", a=np.ones(3))
    _refused(tmp_path / "foreign.npz", "not a cvxnn file")
    np.savez(tmp_path / "junk.npz", **{io.HEADER: np.array("{not json")})
    _refused(tmp_path / "junk.npz", "is not JSON text")
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "absent.npz")


# --- flipped bytes ------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_flipped_bits_inside_an_array(saved, tmp_path, kind):
    """A rewritten archive (valid zip, finite values) caught by the checksum."""
    name = WEIGHTS[kind]

    def flip(arrays):
        arr = arrays[name].copy()
        arr.reshape(-1).view(np.uint8)[1] ^= 0x10  # a low mantissa bit: finite
        arrays[name] = arr
    _refused(_damaged(saved, kind, tmp_path, flip),
             f"array {name!r} does not match its checksum")


@pytest.mark.parametrize("kind", KINDS)
def test_flipped_bytes_in_the_file(saved, tmp_path, kind):
    """Bytes flipped in the compressed stream: zip's CRC or zlib catch it."""
    data = bytearray(saved["paths"][kind].read_bytes())
    with zipfile.ZipFile(saved["paths"][kind]) as archive:
        info = archive.getinfo(WEIGHTS[kind] + ".npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    middle = start + info.compress_size // 2
    data[middle:middle + 4] = bytes(b ^ 0xFF for b in data[middle:middle + 4])
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    _refused(path, f"array {WEIGHTS[kind]!r} cannot be read", "damaged")


# --- the command line ---------------------------------------------------------
def test_cli_predict_with_damaged_model(saved, tmp_path, capsys):
    csv_path = tmp_path / "x.csv"
    np.savetxt(csv_path, saved["X"], delimiter=",", header="a,b,c", comments="")
    assert main(["predict", str(saved["paths"]["estimator"]), str(csv_path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == \
        saved["objects"]["estimator"].predict(saved["X"]).tolist()

    def poison(arrays):
        arrays["solution/U"] = arrays["solution/U"] * np.nan
    bad = _damaged(saved, "estimator", tmp_path, poison)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(saved["paths"]["estimator"].read_bytes()[:300])
    for path, fragment in [(bad, "'solution/U' has 72 non-finite values"),
                           (cut, "cannot be read as a .npz archive")]:
        code = main(["predict", str(path), str(csv_path)])
        out, err = capsys.readouterr()
        assert code == 2 and out == ""
        assert err.startswith(f"cvxnn: error: {path}: ") and fragment in err, err


def _drop_field(*keys):
    """Remove the last of ``keys`` from the header object the others lead to."""
    def edit(header):
        for key in keys[:-1]:
            header = header[key]
        del header[keys[-1]]
    return edit


@pytest.mark.parametrize(("kind", "edit", "fragment"), [
    ("estimator", _drop_field("solution", "n_iter"), "KeyError: 'n_iter'"),
    ("estimator", _field(**{"class": ["ConvexReLUClassifier"]}),
     "TypeError: unhashable type"),
    ("solution", _drop_field("solution", "n_iter"), "KeyError: 'n_iter'"),
])
def test_a_header_missing_or_mistyping_a_field_is_a_model_file_error(
        saved, tmp_path, kind, edit, fragment):
    # forged with a new checksum: the reading code's KeyError or TypeError
    # becomes a ModelFileError naming the file
    _refused(_forged(saved, kind, tmp_path, edit_header=edit),
             "has a malformed header or array", fragment)
    # damaged without one: the structure checks (which run first) or the
    # checksum refuse it, by name either way
    _refused(_damaged(saved, kind, tmp_path, edit_header=edit))


def test_a_member_that_is_not_npy_data_is_refused(saved, tmp_path):
    header, arrays = _contents(saved["paths"]["solution"])
    path = tmp_path / "raw.npz"
    _rewrite(path, header, {k: v for k, v in arrays.items() if k != "U"})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("U.npy", b"not .npy data")
    _refused(path, "array 'U' cannot be read (not .npy data)")


def test_a_failed_save_leaves_the_file_there_whole(saved, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    io.save(path, saved["objects"]["solution"])
    before = path.read_bytes()

    def full_disk(file, **arrays):
        file.write(b"PK partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    with pytest.raises(OSError, match="No space left"):
        io.save(path, saved["objects"]["estimator"])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    assert type(io.load(path)).__name__ == "Solution"


def test_saving_keeps_modes_links_and_special_files(saved, tmp_path):
    import os
    import stat

    sol = saved["objects"]["solution"]
    old = os.umask(0o077)  # a new file: the mode open() would give it
    try:
        io.save(tmp_path / "private.npz", sol)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "private.npz").st_mode) == 0o600
    os.chmod(tmp_path / "private.npz", 0o640)  # a file replaced keeps its mode
    io.save(tmp_path / "private.npz", sol)
    assert stat.S_IMODE(os.stat(tmp_path / "private.npz").st_mode) == 0o640
    os.symlink(tmp_path / "private.npz", tmp_path / "link.npz")  # through a link
    io.save(tmp_path / "link.npz", saved["objects"]["network"])
    assert os.path.islink(tmp_path / "link.npz")
    assert type(io.load(tmp_path / "private.npz")).__name__ == "TwoLayerNetwork"
    io.save(os.fsencode(tmp_path / "bytes.npz"), sol)  # a bytes path
    assert type(io.load(tmp_path / "bytes.npz")).__name__ == "Solution"
    if hasattr(os, "mkfifo"):  # a pipe is written into, not replaced
        import threading

        os.mkfifo(tmp_path / "pipe")
        got = []
        reader = threading.Thread(target=lambda: got.append(
            (tmp_path / "pipe").read_bytes()))
        reader.start()
        io.save(tmp_path / "pipe", sol)
        reader.join(10)
        assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)
        assert got and got[0][:2] == b"PK"


def test_saving_in_place_where_a_rename_would_differ_from_open(saved, tmp_path,
                                                              monkeypatch):
    import os

    from cvxnn.io import archive

    sol, net = saved["objects"]["solution"], saved["objects"]["network"]
    io.save(tmp_path / "a.npz", sol)
    os.link(tmp_path / "a.npz", tmp_path / "b.npz")  # a hard link stays one file
    io.save(tmp_path / "a.npz", net)
    assert os.path.samefile(tmp_path / "a.npz", tmp_path / "b.npz")
    assert type(io.load(tmp_path / "b.npz")).__name__ == "TwoLayerNetwork"
    io.save(tmp_path / "c.npz", sol)  # a rename that fails (a bind-mounted file)

    def busy(source, target):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(archive.os, "replace", busy)
    io.save(tmp_path / "c.npz", net)
    monkeypatch.undo()
    assert type(io.load(tmp_path / "c.npz")).__name__ == "TwoLayerNetwork"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".cvxnn-")]


def test_saving_fails_where_open_would(saved, tmp_path, monkeypatch):
    import os

    sol = saved["objects"]["solution"]
    monkeypatch.chdir(tmp_path)
    os.symlink("b.npz", "a.npz")  # a loop: no file is put in its place
    os.symlink("a.npz", "b.npz")
    with pytest.raises(OSError):
        io.save("a.npz", sol)
    assert os.path.islink("a.npz")
    with pytest.raises(OSError):  # a trailing slash names a directory
        io.save("t.npz/", sol)
    assert not os.path.exists("t.npz")
