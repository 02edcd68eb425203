"""What every method's driver shares: the result it hands to ``fast_solve``
and the monitor that prints progress, calls the user's callback and enforces
the time limit between chunks of compiled iterations."""

import time
from dataclasses import dataclass, field

import numpy as np

from cvxnn.core.status import OPTIMAL, OPTIMAL_INACCURATE


def joined_history(first, then):
    """Two runs' histories one after the other (the keys both have)."""
    return {k: np.concatenate([np.asarray(first[k]), np.asarray(v)])
            for k, v in then.items() if k in first}


def settle_status(solution, tol, cone_tol=None, working=None):
    """Settle a solution's status by its own certificate, in place:
    ``optimal`` only where the returned weights certify tol (and cone_tol).
    The methods judge their iterates in the loop, in the working dtype (a
    device's float32 by default) and at points the finish may still
    change; the solution's certificate is the one that counts. ``working``:
    "device" or "dtype" where the loop ran on a PyTorch device or in another
    working dtype (its messages quote its own numbers)."""
    cone_tol = tol if cone_tol is None else cone_tol
    if solution.status == OPTIMAL:
        short = _short_of_tol(solution, tol, cone_tol, working)
        if short is not None:
            solution.status, solution.message = OPTIMAL_INACCURATE, short
    elif solution.status == OPTIMAL_INACCURATE and \
            solution.certificate.satisfied(tol, cone_tol):
        # a loop that stopped short of its own (tightened) target with weights
        # that certify tol: they decide
        solution.status, solution.message = OPTIMAL, ""
    elif working and solution.certificate.optimality is not None:
        # the loop quotes its own numbers (a device's float32 by default),
        # which can differ from the certificate of the same weights on the
        # problem in the second digit near float32's reach: quote the one
        # that counts
        quoted = f"{solution.certificate.optimality:.2e}"
        if quoted not in solution.message:
            solution.message = (f"{solution.message.rstrip('.')}; the returned "
                                f"weights' certificate: {quoted}.")
    return solution


def _short_of_tol(solution, tol, cone_tol, working):
    """Why an ``optimal`` solve's returned weights miss ``tol`` (or
    ``cone_tol``) by their own certificate, or None."""
    cert = solution.certificate
    if cert.optimality is None or cert.satisfied(tol, cone_tol):
        return None
    found = (f"certificate is {cert.optimality:.2e}" if not cert.optimality <= tol
             else f"cone violation is {cert.cone_violation:.2e} > "
             f"cone_tol={cone_tol:.1e}")
    dtype = solution.info.get("dtype")
    if working == "device" and dtype != "float64" == solution.problem.dtype:
        advice = "a float64 working dtype (dtype='float64') certifies tighter"
    elif working == "dtype" and dtype == "float32" != solution.problem.dtype:
        advice = "the problem's own dtype (no dtype=) certifies tighter"
    elif solution.problem.dtype == np.float32:
        advice = "a problem built from float64 data certifies tighter"
    else:
        advice = "a smaller tol leaves a margin"
    where = {"device": f"the device's working dtype {dtype}",
             "dtype": f"the working dtype {dtype}"}.get(working, "its own test")
    return (f"the method reached tol={tol:.1e} in {where}, but the returned "
            f"weights' {found}; {advice}.")


@dataclass
class Result:
    """What an engine run hands back to fast_solve."""

    status: str
    message: str
    blocks: dict
    n_iter: int
    history: dict
    start: float
    multipliers: tuple | None = None
    info: dict = field(default_factory=dict)
    certificate: object = None  # of blocks and multipliers, where computed
    # a stop the callback, time limit or Ctrl-C asked for, also one that came
    # with convergence (status optimal); the same on every process
    stop: str = ""


class Monitor:
    """Progress printing, the user's callback and the time limit, between chunks.

    The iteration numbers the user sees count on across the phases of a
    solve (``auto``'s hand-overs, Newton-CG's first-order and subsample
    starts): :meth:`next_phase` makes the next phase's iteration 0 (the
    point the last one ended at) the last number reported.
    """

    def __init__(self, verbose, callback, time_limit, name="fast_solve"):
        self.verbose = bool(verbose)
        self.name = name  # what the progress lines start with
        self.callback = callback
        self.time_limit = time_limit
        self.start = time.monotonic()
        self.offset = self.last = 0
        self._last_print = -np.inf

    def elapsed(self):
        return time.monotonic() - self.start

    def next_phase(self):
        """The next phase's iterations count on from the last one reported."""
        self.offset = self.last

    def check(self, info):
        """Print, call back and test the time limit for one progress record."""
        if self.offset:
            info = {**info, "iteration": info["iteration"] + self.offset}
        self.last = info["iteration"]
        if self.verbose and info["time"] - self._last_print >= 0.5:
            self._last_print = info["time"]
            extra = (f"  cone violation {info['cone_violation']:.2e}"
                     if "cone_violation" in info else "")
            print(f"{self.name}  iter {info['iteration']:6d}  t {info['time']:8.2f}s  "
                  f"objective {info['objective']:.10g}  optimality "
                  f"{info['optimality']:.2e}{extra}", flush=True)
        if self.callback is not None and self.callback(info):
            return "stopped by the callback"
        if self.time_limit is not None and info["time"] >= self.time_limit:
            return f"time limit of {self.time_limit:g}s reached"
        return ""


