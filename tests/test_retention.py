"""Retention's choice, over random chains: the newest `keep` always stay, age protects only
while keep_days > 0, and applying it twice changes nothing more."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitend import retention

NOW = 1_800_000_000.0
DAY = retention.DAY_S

# Times newest first, as a branch's chain usually is, but not always (clocks move back).
CHAINS = st.lists(st.integers(min_value=-90 * DAY, max_value=DAY), max_size=40).map(
    lambda offsets: [(f"{position:040x}", NOW + offset) for position, offset in enumerate(offsets)])


@settings(max_examples=300, deadline=None)
@given(chain=CHAINS, keep=st.integers(min_value=1, max_value=30), keep_days=st.integers(min_value=0, max_value=60))
def test_retention_keeps_the_newest_and_the_young(chain: list[tuple[str, float]], keep: int, keep_days: int) -> None:
    result = retention.kept(chain, keep_days=keep_days, keep=keep, now=NOW)
    shas = [sha for sha, _ in chain]
    # In chain order, nothing invented.
    assert result == [sha for sha in shas if sha in set(result)]
    # Never drops the newest `keep`.
    assert shas[:keep] == result[:keep]
    for position, (sha, when) in enumerate(chain[keep:], keep):
        young = keep_days > 0 and NOW - when <= keep_days * DAY
        assert (sha in result) == young, (position, when)
    if keep_days == 0:
        assert result == shas[:keep]
    # A second prune right after finds nothing more to drop.
    again = retention.kept([(sha, when) for sha, when in chain if sha in set(result)],
                           keep_days=keep_days, keep=keep, now=NOW)
    assert again == result


def test_retention_keep_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        retention.kept([("a" * 40, NOW)], keep_days=30, keep=0, now=NOW)
    with pytest.raises(ValueError, match="negative"):
        retention.kept([("a" * 40, NOW)], keep_days=-1, keep=1, now=NOW)
