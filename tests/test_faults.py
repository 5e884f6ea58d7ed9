"""Every fault class, for every reader kind: the run finishes, the books balance, no record is lost,
and each bad input is in _rejected with its reason (cases in tests/faults.py)."""
from __future__ import annotations

from pathlib import Path

from tests.faults import run_all, summary


def test_every_fault_is_handled_and_nothing_is_lost(tmp_path: Path) -> None:
    outcomes = run_all(tmp_path)
    table = summary(outcomes)
    assert all(o.handled for o in outcomes), table
    assert sum(o.lost for o in outcomes) == 0, table
    assert len({o.case.kind.name for o in outcomes}) == 8
