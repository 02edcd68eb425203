"""Train a two-layer ReLU network to global optimality on breast-cancer data.

Builds the convex (gated ReLU) reformulation on scikit-learn's breast-cancer
data set (shipped with scikit-learn, no download), solves it with CLARABEL
through CVXPY and with cvxnn's compiled solver, and prints for each: status,
objective, certificate, solve time and train/test accuracy of the trained
network, then the relative objective gap between the two.

Usage: python examples/demo.py [--solvers CLARABEL,fast] [--gates 100] [--lam 1e-3]
"""

import argparse

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import cvxnn


def load_data(seed):
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=seed, stratify=y)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test


def accuracy(problem, sol, X, y):
    labels = problem.loss.decision(sol.predict(X), problem.classes).ravel()
    return float(np.mean(labels == y))


def report(problem, sol, data):
    X_train, X_test, y_train, y_test = data
    print(f"\n== {sol.solver}")
    print(f"status      {sol.status}")
    print(f"objective   {sol.objective:.10g}")
    print(f"certificate {sol.certificate.summary()}")
    print(f"time        {sol.solve_time:.3f} s")
    norms = np.linalg.norm(sol.U, axis=2)
    active = int(np.sum(norms > 1e-6 * norms.max(initial=0.0)))
    print(f"neurons     {active} of {problem.n_patterns} with norm > 1e-6 * max")
    print(f"accuracy    train {accuracy(problem, sol, X_train, y_train):.4f}, "
          f"test {accuracy(problem, sol, X_test, y_test):.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solvers", default="CLARABEL,fast",
                        help="comma-separated solver names (default CLARABEL,fast)")
    parser.add_argument("--gates", type=int, default=100)
    parser.add_argument("--lam", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_data(args.seed)
    problem = cvxnn.build_problem(data[0], data[2], formulation="gated_relu",
                                  loss="logistic", regularizer="group_l1",
                                  lam=args.lam, n_gates=args.gates, bias=True,
                                  random_state=args.seed)
    print(problem)
    options = {"fast": {"tol": 1e-6}}
    solutions = []
    for name in args.solvers.split(","):
        sol = problem.solve(name, **options.get(name, {}))
        report(problem, sol, data)
        solutions.append(sol)
    if len(solutions) == 2:
        a, b = (s.objective for s in solutions)
        print(f"\nrelative objective gap {solutions[1].solver} vs "
              f"{solutions[0].solver}: {abs(a - b) / abs(a):.3g}")


if __name__ == "__main__":
    main()
