"""The layout's rules, checked on the source: dependencies flow one way.

* No circle in the import graph of ``cvxnn`` and ``cvxnn_fast`` (every
  import counts, also those inside functions).
* ``cvxnn`` imports nothing from ``cvxnn_fast``; the library imports nothing
  from ``comparisons``.
* ``cvxnn`` works with ``cvxnn_fast`` absent: it builds and solves with
  CLARABEL, and ``solver="fast"`` then fails with a clear ImportError.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import cvxnn

ROOT = Path(cvxnn.__file__).resolve().parent.parent
PACKAGES = ("cvxnn", "cvxnn_fast")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield _module_name(path), path, path.name == "__init__.py"


def _imports(tree, module, is_package):
    """Every module name an import statement of ``tree`` names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            yield stem
            yield from (f"{stem}.{alias.name}" for alias in node.names)


def import_graph():
    """{module: set of modules of this repository it imports}."""
    nodes = {name: (path, pkg) for name, path, pkg in _sources()}
    graph = {}
    for name, (path, pkg) in nodes.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {m for m in _imports(tree, name, pkg) if m in nodes} - {name}
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from cvxnn.core import operator\n")
    assert "cvxnn.core.operator" in set(_imports(tree, "cvxnn.x", False))
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [
        ["a", "b", "c"]]


def test_no_import_circle():
    assert _cycles(import_graph()) == []


def test_cvxnn_never_imports_cvxnn_fast_and_nothing_imports_comparisons():
    for name, path, pkg in _sources():
        named = set(_imports(ast.parse(path.read_text()), name, pkg))
        assert not any(m.split(".")[0] == "comparisons" for m in named), name
        if name.split(".")[0] == "cvxnn":
            assert not any(m.split(".")[0] == "cvxnn_fast" for m in named), name


def test_cvxnn_solves_without_cvxnn_fast():
    code = textwrap.dedent("""
        import sys
        sys.modules["cvxnn_fast"] = None  # importing it now raises ImportError
        import numpy as np
        import cvxnn
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 3))
        problem = cvxnn.build_problem(X, X[:, 0], lam=1e-2, n_gates=5)
        sol = problem.solve("CLARABEL")
        assert sol.status == "optimal", sol.status
        try:
            problem.solve("fast")
        except ImportError as exc:
            assert "cvxnn_fast" in str(exc), exc
        else:
            raise AssertionError("solve('fast') without cvxnn_fast did not fail")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cvxpy_is_imported_only_when_a_cvxpy_solver_runs(tmp_path):
    """cvxpy's import is 0.4 s of the 0.6 s that `import cvxnn` (and every
    CLI command) took; the fast solver, the estimators and model files do
    not need it."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import cvxnn
        from cvxnn_fast import fast_solve
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 3))
        problem = cvxnn.build_problem(X, X[:, 0], lam=1e-2, n_gates=5)
        sol = fast_solve(problem)
        model = cvxnn.ConvexReLURegressor(n_gates=5).fit(X, X[:, 0])
        cvxnn.save(sys.argv[1], model)
        cvxnn.load(sys.argv[1])
        assert "cvxpy" not in sys.modules, "imported by cvxnn, a fit or a model file"
        ref = problem.solve("CLARABEL")
        assert abs(ref.objective - sol.objective) <= 1e-6 * abs(ref.objective)
        import cvxpy as cp
        from cvxnn.core.status import CVXPY_STATUSES
        assert CVXPY_STATUSES == frozenset(cp.settings.SOLUTION_PRESENT
                                           + cp.settings.INF_OR_UNB
                                           + cp.settings.ERROR)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.npz")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_documented_import_paths_and_top_level_names():
    from cvxnn.network import TwoLayerNetwork, network_from_weights

    import cvxnn.estimators
    import cvxnn.io
    from cvxnn import ConvexReLUClassifier, ConvexReLURegressor, load, save
    from cvxnn.cli import main
    from cvxnn.decomposition import decompose
    from cvxnn_fast import fast_solve
    from cvxnn_fast.solve import choose_method

    assert ConvexReLUClassifier is cvxnn.estimators.ConvexReLUClassifier
    assert ConvexReLURegressor is cvxnn.estimators.ConvexReLURegressor
    assert (save, load) == (cvxnn.io.save, cvxnn.io.load)
    assert network_from_weights is cvxnn.network_from_weights
    assert TwoLayerNetwork is cvxnn.TwoLayerNetwork and decompose is cvxnn.decompose
    assert callable(main) and callable(fast_solve) and callable(choose_method)
