"""Warnings and errors raised by cvxnn solvers."""


class ConvergenceWarning(UserWarning):
    """A solver stopped before its certificate met the tolerance."""


class NumericalBreakdown(ArithmeticError):
    """A solver produced NaN/inf or could not continue.

    ``solution`` holds the last iterate with finite weights (status
    ``"solver_error"``) when there is one, so nothing computed before the
    breakdown is lost.
    """

    def __init__(self, message, solution=None):
        super().__init__(message)
        self.solution = solution
