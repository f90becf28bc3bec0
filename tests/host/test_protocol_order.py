"""Decoder against duplicated and reordered frames (fuzzed): it never raises, yields only
frames the board sent, and counts every departure from the board's order."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_protocol import frames, tel
from thermoguard import protocol as p

ORIGINALS = [tel(seq, seq, 0) for seq in range(1, 9)]


@pytest.mark.req("SR-LNK-02", "SR-LNK-05")
@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(ORIGINALS) - 1), min_size=1, max_size=30))
def test_duplicated_and_reordered_frames_are_counted(order):
    d = p.Decoder()
    items = frames(d.feed(b"".join(ORIGINALS[i] for i in order)) + d.flush())
    assert [x.seq for x in items] == [i + 1 for i in order]  # each exactly as sent, none altered
    in_order = all(b == a + 1 for a, b in zip(order, order[1:], strict=False))
    if not in_order:
        assert d.lost + d.restarts >= 1
    else:
        assert d.lost == 0 and d.restarts == 0
