"""The benches take their servers' turns in balanced orders: each follows each other equally often,
so the work one leaves behind (a fresh child's exit, a replacement's fork) falls on all alike."""

from __future__ import annotations

import collections
import sys

import pytest

from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from _harness import balanced_orders


@pytest.mark.parametrize("n", range(2, 9))
def test_each_server_follows_each_other_equally_often(n: int) -> None:
    orders = balanced_orders(n)
    assert all(sorted(order) == list(range(n)) for order in orders)
    follows = collections.Counter((a, b) for order in orders for a, b in zip(order[:-1], order[1:], strict=True))
    assert set(follows) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert len(set(follows.values())) == 1  # each ordered pair as often as every other
