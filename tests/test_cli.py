"""The ``cvxnn`` command, driven in-process through main(argv) and once as a process."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cvxnn
from cvxnn import io
from cvxnn.cli.commands import main

SOLVER = "CLARABEL"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def table(tmp_path):
    """A CSV with three features, a numeric target and a text label column."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 3))
    y = np.maximum(X[:, 0] - X[:, 1], 0) + 0.5 * X[:, 2]
    labels = np.where(X[:, 0] + X[:, 2] > 0, "pos", "neg")
    path = tmp_path / "data.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "c", "y", "label"])
        for row, target, label in zip(X, y, labels, strict=True):
            writer.writerow([*map(repr, row.tolist()), repr(float(target)), label])
    np.savez(tmp_path / "data.npz", X=X, y=y)
    return {"csv": path, "npz": tmp_path / "data.npz", "X": X, "y": y,
            "labels": labels, "dir": tmp_path}


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_regression_prints_summary_and_saves(table, capsys):
    model = table["dir"] / "m.npz"
    code, out, err = _run(["fit", table["csv"], "--target", "y", "--features",
                           "a,b,c", "--solver", SOLVER, "--n-gates", "10",
                           "--lam", "0.01", "--out", model], capsys)
    assert code == 0, err
    est = io.load_model(model)
    # the regressor's problem: the targets around their mean
    problem = cvxnn.build_problem(table["X"], table["y"] - table["y"].mean(),
                                  lam=0.01, n_gates=10, bias=True, random_state=0)
    sol = problem.solve(SOLVER)
    printed = float(re.search(r"objective: (\S+)", out).group(1))
    assert printed == pytest.approx(sol.objective, rel=1e-8)
    r2 = float(re.search(r"training R\^2: (\S+)", out).group(1))
    assert r2 == pytest.approx(est.score(table["X"], table["y"]), abs=1e-4)
    assert f"active neurons: {est.n_active_}" in out
    assert "relative duality gap" in out and "status optimal" in out


def test_fit_classification_then_predict(table, capsys):
    model = table["dir"] / "c.npz"
    code, out, err = _run(["fit", table["csv"], "-t", "label", "--features", "a,b,c",
                           "--solver", SOLVER, "--n-gates", "8", "--out", model],
                          capsys)
    assert code == 0, err
    assert "classification (2 classes)" in out and "loss logistic" in out
    est = io.load_model(model)
    acc = float(re.search(r"training accuracy: (\S+)", out).group(1))
    assert acc == pytest.approx(np.mean(est.predict(table["X"]) == table["labels"]),
                                abs=1e-4)
    code, out, _ = _run(["predict", model, table["csv"]], capsys)
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["label"]
    assert [r[0] for r in rows[1:]] == est.predict(table["X"]).tolist()
    out_csv = table["dir"] / "p.csv"
    code, _, _ = _run(["predict", model, table["csv"], "--proba", "--out", out_csv],
                      capsys)
    data = np.genfromtxt(out_csv, delimiter=",", names=True)
    assert data.dtype.names == ("proba_neg", "proba_pos")
    np.testing.assert_allclose(data["proba_pos"],
                               est.predict_proba(table["X"])[:, 1], rtol=1e-12)


def test_integer_labels_are_predicted_as_written(table, capsys):
    path, model = table["dir"] / "ints.csv", table["dir"] / "i.npz"
    labels = np.where(table["labels"] == "pos", 7, 3)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "c", "digit"])
        for row, label in zip(table["X"], labels, strict=True):
            writer.writerow([*map(repr, row.tolist()), str(label)])
    code, _, err = _run(["fit", path, "-t", "digit", "--task", "classification",
                         "--solver", SOLVER, "--n-gates", "8", "--out", model], capsys)
    assert code == 0, err
    code, out, _ = _run(["predict", model, path], capsys)
    predicted = [r[0] for r in csv.reader(out.splitlines())][1:]
    assert set(predicted) <= {"3", "7"}
    est = io.load_model(model)
    assert predicted == [str(v) for v in est.predict(table["X"])]
    assert np.mean(np.array(predicted) == labels.astype(str)) > 0.8


def test_npz_data_and_solver_options(table, capsys):
    model = table["dir"] / "n.npz"
    code, out, err = _run(["fit", table["npz"], "--solver", "SCS", "--n-gates", "6",
                           "--option", "SCS:eps_abs=1e-9", "-o", "eps_rel=1e-9",
                           "--out", model], capsys)
    assert code == 0, err
    est = io.load_model(model)
    assert est.solver_options == {"eps_abs": 1e-9, "eps_rel": 1e-9}
    code, out, _ = _run(["predict", model, table["npz"]], capsys)
    values = np.array([float(r) for r in out.splitlines()[1:]])
    np.testing.assert_array_equal(values, est.predict(table["X"]))


def test_compare_prints_gap_between_solvers(table, capsys):
    code, out, err = _run(["compare", table["csv"], "--target", "y", "--features",
                           "a,b,c", "--formulation", "relu", "--n-gates", "6",
                           "--solvers", "CLARABEL", "ECOS"], capsys)
    assert code == 0, err
    problem = cvxnn.build_problem(table["X"], table["y"] - table["y"].mean(),
                                  formulation="relu", n_gates=6, bias=True,
                                  random_state=0)
    objectives = {s: problem.solve(s).objective for s in ("CLARABEL", "ECOS")}
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()[:1] in (["CLARABEL"], ["ECOS"]) and " vs " not in line}
    for name, value in objectives.items():
        assert float(rows[name][2]) == pytest.approx(value, rel=1e-10)
    diff = float(re.search(r"objective difference (\S+)", out).group(1))
    assert diff == pytest.approx(objectives["ECOS"] - objectives["CLARABEL"],
                                 rel=1e-3, abs=1e-12)
    assert "within the certified gaps" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["fit", "missing.csv", "-t", "y", "--out", "m.npz"], "no such file"),
    (["fit", "{csv}", "-t", "nope", "--out", "m.npz"], "no column 'nope'"),
    (["fit", "{csv}", "-t", "y", "--out", "m.npz"], "column 'label'"),
    (["fit", "{csv}", "-t", "y", "--features", "a", "--lam", "-1",
      "--solver", SOLVER, "--out", "m.npz"], "lam"),
    (["fit", "{csv}", "-t", "y", "--features", "a", "--loss", "logistic",
      "--task", "regression", "--out", "m.npz"], "--loss"),
    (["compare", "{csv}", "-t", "y", "--solvers", "NOSUCH"], "NOSUCH"),
    (["fit", "{csv}", "-t", "y", "--solver", "NOSUCH", "--out", "m.npz"],
     "--solver: 'NOSUCH'"),
    (["predict", "{dir}/none.npz", "{csv}"], "none.npz"),
])
def test_errors_exit_2_with_a_message(table, capsys, argv, message):
    argv = [a.format(csv=table["csv"], dir=table["dir"]) for a in argv]
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert err.startswith("cvxnn: error:") and message in err


@pytest.fixture
def bad_files(table):
    """Damaged or contradictory data files next to ``table``'s."""
    files = {
        "dup.csv": b"a,a,c,y\n1,2,3,4\n5,6,7,8\n",
        "latin1.csv": "a,b,y\n1,2,caf\xe9\n3,4,th\xe9\n".encode("latin-1"),
        "empty_y.csv": b"a,b,y\n1,2,3\n4,5,\n6,7,8\n",
        "nan.csv": b"a,b,y\n1,2,3\n4,inf,5\n6,7,8\n",
        "blank.csv": b"a,b,y\n\n1,2,3\n\n4,x,5\n",
        "index.csv": b",a,y\n0,1,2\n1,3,4\n2,5,6\n",
        "text.npz": b"a,b,y\n1,2,3\n",
        "half.npz": table["npz"].read_bytes()[:table["npz"].stat().st_size // 2],
    }
    for name, data in files.items():
        (table["dir"] / name).write_bytes(data)
    X, y = table["X"][:6], table["y"][:6]
    np.savez(table["dir"] / "object.npz", X=X.astype(object), y=y)
    np.savez(table["dir"] / "names.npz", X=X, y=y, feature_names=np.array(["a", "b"]))
    return table["dir"]


@pytest.mark.parametrize(("argv", "message"), [
    (["fit", "{dir}/dup.csv", "-t", "y", "--out", "{dir}/m.npz"],
     "column name 'a' appears twice"),
    (["fit", "{dir}/half.npz", "--out", "{dir}/m.npz"],
     "cannot be read as a .npz archive"),
    (["fit", "{dir}/text.npz", "--out", "{dir}/m.npz"],
     "text.npz cannot be read as a .npz"),
    (["fit", "{dir}/object.npz", "--out", "{dir}/m.npz"], "DATA: array 'X'"),
    (["fit", "missing.csv", "-t", "y", "--out", "{dir}/nodir/m.npz"],
     "--out: directory '{dir}/nodir' does not exist"),
    (["fit", "missing.csv", "-t", "y", "--out", "{dir}"],
     "--out: '{dir}' is a directory"),
    (["compare", "missing.csv", "-t", "y", "--solvers", SOLVER, "--plot",
      "{dir}/nodir/p.png"], "--plot: directory"),
    (["compare", "missing.csv", "-t", "y", "--solvers", SOLVER, "--plot", "p.xyz"],
     "--plot: 'p.xyz' must end in an image extension"),
    (["fit", "missing.csv", "-t", "y", "--solver", SOLVER, "-o", "CLARABL:max_iter=5",
      "--out", "{dir}/m.npz"], "--option: 'CLARABL'"),
    (["fit", "{csv}", "-t", "y", "--solver", "SCS", "-o", "CLARABEL:max_iter=1",
      "--out", "{dir}/m.npz"], "--option: 'CLARABEL'"),
    (["fit", "missing.csv", "-t", "y", "--solver", "fast", "-o", "bogus=1",
      "--out", "{dir}/m.npz"], "--option: fast takes no option 'bogus'"),
    (["compare", "missing.csv", "-t", "y", "--solvers", SOLVER, "ECOS", "-o",
      "ECOS:max_iter=5"], "--option: ECOS takes no option 'max_iter'"),
    (["compare", "missing.csv", "-t", "y", "--solvers", SOLVER, "ECOS", "-o",
      "auto:max_iter=5"], "CLARABEL, ECOS"),
    (["fit", "{csv}", "-t", "y", "--features", "a,y", "--out", "{dir}/m.npz"],
     "--features: 'y'"),
    (["fit", "{dir}/empty_y.csv", "-t", "y", "--out", "{dir}/m.npz"],
     "column 'y' of {dir}/empty_y.csv is empty in row 3"),
    (["fit", "{dir}/names.npz", "--out", "{dir}/m.npz"], "'feature_names'"),
    (["fit", "{dir}/latin1.csv", "-t", "y", "--out", "{dir}/m.npz"],
     "DATA: {dir}/latin1.csv is not UTF-8"),
    (["fit", "{dir}/nan.csv", "-t", "y", "--out", "{dir}/m.npz"], "column 'b'"),
    (["fit", "{dir}/blank.csv", "-t", "y", "--out", "{dir}/m.npz"],
     "row 5 holds 'x'"),  # the file's line, blank lines counted
    (["fit", "{dir}/index.csv", "-t", "y", "--out", "{dir}/m.npz"],
     "column 1 of {dir}/index.csv has no name"),
    (["fit", "{csv}", "-t", "label", "--features", "a,b", "--task", "regression",
      "--solver", SOLVER, "--out", "{dir}/m.npz"],
     "--task regression: the target 'label'"),
])
def test_bad_input_is_named_before_any_work(table, bad_files, capsys, argv, message):
    argv = [a.format(csv=table["csv"], dir=bad_files) for a in argv]
    code, _, err = _run(argv, capsys)
    assert code == 2, err
    assert err.startswith("cvxnn: error:")
    assert message.format(dir=bad_files) in err


def test_predict_rejects_a_damaged_npz(table, bad_files, capsys):
    model = table["dir"] / "d.npz"
    code, _, err = _run(["fit", table["npz"], "--solver", SOLVER, "--n-gates", "4",
                         "--out", model], capsys)
    assert code == 0, err
    for name in ("half.npz", "text.npz"):
        code, _, err = _run(["predict", model, bad_files / name], capsys)
        assert code == 2
        assert f"DATA: {bad_files / name} cannot be read as a .npz archive" in err


def test_help_is_complete(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for flag in ("--target", "--out", "--lam", "--solver", "--option", "examples:"):
        assert flag in out


def test_command_runs_as_a_process(table):
    model = table["dir"] / "proc.npz"
    result = subprocess.run(
        [sys.executable, "-m", "cvxnn", "fit", str(table["npz"]), "--solver", SOLVER,
         "--n-gates", "5", "--out", str(model)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "objective:" in result.stdout
    assert io.load_model(model).predict(table["X"]).shape == (40,)


def test_npz_features_select_columns_by_name(table, capsys):
    """--features on an NPZ picks columns by its feature_names (else x0, x1,
    ...); predicting on an NPZ with named, reordered columns uses the names."""
    X, d = table["X"], table["dir"]
    model = d / "sel.npz"
    code, _, err = _run(["fit", table["npz"], "--features", "x2,x0", "--solver",
                         SOLVER, "--n-gates", "4", "--out", model], capsys)
    assert code == 0, err
    est = io.load_model(model)
    np.savez(d / "named.npz", X=X[:, [1, 0, 2]], feature_names=["x1", "x0", "x2"])
    np.savez(d / "plain.npz", X=X[:, [2, 0]])
    outputs = []
    for data in ("named.npz", "plain.npz"):
        code, out, err = _run(["predict", model, d / data], capsys)
        assert code == 0, err
        outputs.append(np.loadtxt(out.splitlines()[1:], ndmin=1))
    expected = est.predict(X[:, [2, 0]])
    for got in outputs:
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    code, _, err = _run(["fit", table["npz"], "--features", "x0,q", "--out", model],
                        capsys)
    assert code == 2 and "has no column 'q'; columns: x0, x1, x2" in err
    # a model's columns from an unnamed NPZ: in order, as many as it takes
    code, _, err = _run(["predict", model, table["npz"]], capsys)
    assert code == 2 and "has 3 columns, the model was trained on 2" in err


def test_predict_picks_a_python_models_columns_by_name(table, capsys):
    """A model fitted in Python on a DataFrame and saved with cvxnn.save:
    ``cvxnn predict`` picks its columns by feature_names_in_ (it took the
    CSV's columns in file order: 31% agreement on reordered iris columns),
    and ignores others."""
    import pandas as pd

    X, d = table["X"], table["dir"]
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    est = cvxnn.ConvexReLURegressor(n_gates=4).fit(frame, table["y"])
    cvxnn.save(d / "python.npz", est)
    frame[["c", "a", "b"]].assign(extra=1.0).to_csv(d / "reordered.csv", index=False)
    code, out, err = _run(["predict", d / "python.npz", d / "reordered.csv"], capsys)
    assert code == 0 and err == ""
    np.testing.assert_allclose(np.loadtxt(out.splitlines()[1:]), est.predict(frame),
                               rtol=1e-12)


def test_out_that_is_an_input_is_refused_before_any_work(table, capsys):
    before = table["csv"].read_bytes()
    code, _, err = _run(["fit", table["csv"], "-t", "y", "--features", "a,b,c",
                         "--solver", SOLVER, "--out", table["csv"]], capsys)
    assert code == 2 and f"--out: '{table['csv']}' is the input" in err
    assert table["csv"].read_bytes() == before
    model = table["dir"] / "m.npz"
    code, _, err = _run(["fit", table["csv"], "-t", "y", "--features", "a,b,c",
                         "--solver", SOLVER, "--n-gates", "4", "--out", model], capsys)
    assert code == 0, err
    saved = model.read_bytes()
    for out in (model, table["csv"]):
        code, _, err = _run(["predict", model, table["csv"], "--out", out], capsys)
        assert code == 2 and "is the input" in err
    assert model.read_bytes() == saved and table["csv"].read_bytes() == before


def test_npz_members_that_are_not_arrays_and_mismatched_names(table, capsys):
    import zipfile

    d = table["dir"]
    with zipfile.ZipFile(d / "raw.npz", "w") as archive:  # not .npy data
        archive.writestr("X.npy", b"1,2,3\n")
    code, _, err = _run(["fit", d / "raw.npz", "--out", d / "m.npz"], capsys)
    assert code == 2 and "DATA: array 'X' in" in err and "is not a .npy array" in err
    model = d / "sel.npz"
    code, _, err = _run(["fit", table["npz"], "--features", "x2,x0", "--solver",
                         SOLVER, "--n-gates", "4", "--out", model], capsys)
    assert code == 0, err
    # names that do not hold the model's columns: refused, not taken in order
    np.savez(d / "other.npz", X=table["X"][:, :2], feature_names=["x2", "x9"])
    code, _, err = _run(["predict", model, d / "other.npz"], capsys)
    assert code == 2 and "do not name the model's columns ['x0']" in err


def test_labels_with_leading_zeros_stay_as_written(table, capsys):
    d = table["dir"]
    labels = np.where(table["X"][:, 0] > 0, "007", "7")
    with open(d / "codes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "c", "code"])
        for row, label in zip(table["X"], labels, strict=True):
            writer.writerow([*map(repr, row.tolist()), label])
    model = d / "codes.npz"
    code, out, err = _run(["fit", d / "codes.csv", "-t", "code", "--solver", SOLVER,
                           "--n-gates", "4", "--out", model], capsys)
    assert code == 0, err
    assert "classification (2 classes)" in out
    assert sorted(io.load_model(model).classes_.tolist()) == ["007", "7"]


def test_predict_warns_when_the_model_names_no_columns(table, capsys):
    d = table["dir"]
    est = cvxnn.ConvexReLURegressor(n_gates=4).fit(table["X"], table["y"])
    cvxnn.save(d / "array.npz", est)
    code, out, err = _run(["predict", d / "array.npz", table["csv"]], capsys)
    assert code == 2  # five CSV columns for three features
    code, out, err = _run(["predict", d / "array.npz", table["npz"]], capsys)
    assert code == 0 and "are taken in file order" in err


def test_zero_padded_numeric_targets_and_made_up_names(table, capsys):
    d = table["dir"]
    X = table["X"]
    months = [f"{1 + i % 12:02d}" for i in range(len(X))]
    with open(d / "months.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "c", "month"])
        for row, month in zip(X, months, strict=True):
            writer.writerow([*map(repr, row.tolist()), month])
    code, out, err = _run(["fit", d / "months.csv", "-t", "month", "--task",
                           "regression", "--solver", SOLVER, "--n-gates", "4",
                           "--out", d / "months.npz"], capsys)
    assert code == 0, err
    assert "regression" in out
    est = io.load_model(d / "months.npz")
    assert est.intercept_[0] == pytest.approx(np.mean([int(m) for m in months]))
    # a model fitted on an NPZ without names holds x0, x1, ...: an NPZ with
    # names of its own is read in column order, as before
    model = d / "plain_model.npz"
    code, _, err = _run(["fit", table["npz"], "--solver", SOLVER, "--n-gates", "4",
                         "--out", model], capsys)
    assert code == 0, err
    np.savez(d / "renamed.npz", X=X, feature_names=["p", "q", "r"])
    code, out, err = _run(["predict", model, d / "renamed.npz"], capsys)
    assert code == 0, err
    np.testing.assert_allclose(np.loadtxt(out.splitlines()[1:]),
                               io.load_model(model).predict(X), rtol=1e-12)
