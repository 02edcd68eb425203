"""Randomized campaign in small: fast_solve with its defaults against CLARABEL.

A few hundred seeded small problems (comparisons/campaign.py's generator:
every formulation x loss x regularizer, with and without bias, badly scaled
columns, a constant column, duplicated rows; lam log-uniform below lam_max),
each solved by ``fast_solve(problem, tol=1e-6)`` and by CLARABEL (solved
once per run, cached). The larger run with the per-combination table is
``python comparisons/campaign.py``.
"""

from pathlib import Path

import pytest

COMPARISONS = Path(__file__).resolve().parents[1] / "comparisons"
COUNT = 300  # ten problems per combination
SIZES = {"n_range": (15, 40), "d_range": (1, 4), "gate_range": (3, 8)}


@pytest.fixture(scope="module")
def campaign():
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(COMPARISONS))
        import campaign
    return campaign


@pytest.fixture(scope="module")
def rows(campaign):
    cache = {}  # spec -> CLARABEL solution, solved once per run
    return [campaign.compare(spec, cache)
            for spec in campaign.specs(COUNT, seed=0, **SIZES)]


def test_every_combination_and_pathology_is_drawn(campaign, rows):
    combos = {r.spec.combination for r in rows}
    assert combos == set(campaign.COMBINATIONS)
    assert {r.spec.pathology for r in rows} == set(campaign.PATHOLOGIES)
    assert {r.spec.bias for r in rows} == {False, True}
    # Most unregularized logistic / cross-entropy fits of so few samples have
    # no minimizer (campaign.has_recession_direction); everything else is posed.
    posed = sum(r.well_posed for r in rows)
    assert posed >= 0.85 * COUNT


def test_no_optimal_answer_is_worse_than_clarabel_beyond_its_gap(rows):
    wrong = [r for r in rows if r.wrong]
    assert not wrong, wrong


def test_defaults_reach_optimal_on_at_least_99_percent(campaign, rows):
    rate, _, _ = campaign.summary(rows)
    failures = [r for r in rows if r.well_posed and not r.optimal]
    assert rate >= 0.99, (campaign.table(rows), failures)
