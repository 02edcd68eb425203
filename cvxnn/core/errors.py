"""Warnings and errors raised by cvxnn solvers."""

# The message a solver that caught Ctrl-C puts in its solution (status
# "user_limit"), so that callers such as regularization_path can stop too.
INTERRUPTED = "interrupted by the user (KeyboardInterrupt)"


class ConvergenceWarning(UserWarning):
    """A solver stopped before its certificate met the tolerance."""


class NumericalBreakdown(ArithmeticError):
    """A solver produced NaN/inf or could not continue.

    ``solution`` holds the last finite iterate (status ``"solver_error"``)
    when there is one, so nothing computed before the breakdown is lost.
    """

    def __init__(self, message, solution=None):
        super().__init__(message)
        self.solution = solution
