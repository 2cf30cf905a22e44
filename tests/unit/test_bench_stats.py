"""The benches' verdicts on a latency ratio say "met" or "MISSED" only where the ratio's interval
within the run (a bootstrap over its rounds of turns) lies on one side of the target."""

from __future__ import annotations

import random
import sys

import pytest

from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from run import target_within

from _harness import ratio_interval


def test_rounds_are_drawn_for_both_servers_together() -> None:
    # Load that came and went (each round's level differs tenfold) moves both servers alike: drawn
    # by round, the ratio of two servers whose every call differs by 1.5x is 1.5x in every draw.
    rng = random.Random(1)
    floor = [[rng.uniform(1, 2) * level for _ in range(30)] for level in range(1, 11)]
    ours = [[x * 1.5 for x in turn] for turn in floor]
    low, high = ratio_interval(ours, floor)
    assert low == pytest.approx(1.5, rel=1e-12) and high == pytest.approx(1.5, rel=1e-12)


def test_the_interval_holds_the_ratio_and_widens_with_the_rounds_spread() -> None:
    rng = random.Random(2)
    floor = [[1.0] * 30 for _ in range(20)]
    steady = [[1.2] * 30 for _ in range(20)]
    noisy = [[rng.choice((0.9, 1.5))] * 30 for _ in range(20)]
    assert ratio_interval(steady, floor) == (1.2, 1.2)
    low, high = ratio_interval(noisy, floor)
    assert 0.9 <= low < high <= 1.5
    assert ratio_interval(noisy, floor) == (low, high)  # seeded: one run prints one interval


def test_a_verdict_is_said_outright_only_clear_of_the_limit() -> None:
    assert target_within(1.05, 1.01, 1.09, 1.1) == "[target <= 1.1: met]"
    assert target_within(1.2, 1.15, 1.3, 1.1) == "[target <= 1.1: MISSED]"
    assert target_within(1.08, 1.05, 1.12, 1.1) == "[target <= 1.1: met at p50; the interval spans it]"
    assert target_within(1.12, 1.05, 1.15, 1.1) == "[target <= 1.1: missed at p50; the interval spans it]"
