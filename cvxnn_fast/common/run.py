"""What every method's driver shares: the result it hands to ``fast_solve``
and the monitor that prints progress, calls the user's callback and enforces
the time limit between chunks of compiled iterations."""

import time
from dataclasses import dataclass, field

import numpy as np


def joined_history(first, then):
    """Two runs' histories one after the other (the keys both have)."""
    return {k: np.concatenate([np.asarray(first[k]), np.asarray(v)])
            for k, v in then.items() if k in first}


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

    def __init__(self, verbose, callback, time_limit):
        self.verbose = bool(verbose)
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
            print(f"fast_solve  iter {info['iteration']:6d}  t {info['time']:8.2f}s  "
                  f"objective {info['objective']:.10g}  optimality "
                  f"{info['optimality']:.2e}{extra}", flush=True)
        if self.callback is not None and self.callback(info):
            return "stopped by the callback"
        if self.time_limit is not None and info["time"] >= self.time_limit:
            return f"time limit of {self.time_limit:g}s reached"
        return ""


