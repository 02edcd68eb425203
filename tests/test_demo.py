"""The README's demo runs end to end (CLARABEL only, few gates, to stay quick)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.py"


def test_demo_runs():
    pytest.importorskip("sklearn")
    # the cvxnn of this checkout, as `python -m pytest` from the root would use
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, str(DEMO), "--solvers", "CLARABEL", "--gates", "8"],
        capture_output=True, text=True, timeout=300, check=True, env=env,
    ).stdout
    assert "status      optimal" in out
    test_accuracy = float(out.split("test ")[-1].split()[0])
    assert test_accuracy > 0.85
