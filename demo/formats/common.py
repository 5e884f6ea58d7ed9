"""What the format writers share: the shape of their output, UTC dates, JSON lines."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

# A writer's files: path under the corpus folder -> (contents, rows); and its views' ground truth by view name.
Files = dict[str, tuple[bytes, int]]
Written = tuple[Files, dict[str, Any]]


def epoch(year: int, month: int = 1) -> float:
    """Seconds since 1970 at the start of a month (UTC)."""
    return datetime(year, month, 1, tzinfo=timezone.utc).timestamp()


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def jsonl(rows: list[dict[str, Any]], ensure_ascii: bool = False) -> bytes:
    """Rows as UTF-8 JSON lines."""
    return "".join(json.dumps(row, ensure_ascii=ensure_ascii) + "\n" for row in rows).encode()
