"""Every fault class, for every reader kind: the run finishes, the books balance, and every good row a
reference decoder recovers from the (damaged) input is written or rejected with its reason, exactly once
(cases in tests/faults.py, decoders in tests/reference_decoders.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import run_all, summary

pytestmark = pytest.mark.slow


def test_every_fault_is_handled_and_nothing_is_lost(tmp_path: Path) -> None:
    outcomes = run_all(tmp_path)
    table = summary(outcomes)
    assert all(o.handled for o in outcomes), table
    assert sum(o.lost for o in outcomes) == 0, table
    assert len({o.case.kind.name for o in outcomes}) == 8
    damaged = [o for o in outcomes if o.case.good is None]
    assert sum(o.recovered for o in damaged) > 0, "no damaged file keeps a recoverable row: the check would be vacuous"
