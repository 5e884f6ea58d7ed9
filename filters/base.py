"""What a per-record filter is: a predicate that keeps a record or drops it with a named reason.

Modelled on datatrove: ``check`` answers for one record, ``check_batch`` for many at once (the form
the pipelines call, so model-backed filters batch their work). A filter may rewrite the record's
text or add to its ``meta`` in place (cleaning, language scores). Models load in ``setup``, which the
pipelines call once per worker process.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from schemas.record import PairRecord


class RecordFilter(ABC):
    stage: ClassVar[str]
    """The funnel stage name this filter's counts are reported under."""

    batch_size: int = 1024

    def setup(self) -> None:  # noqa: B027 - an optional hook, not an abstract method: most filters need no setup
        """Load models or other heavy state; called once per worker before the first record."""

    @abstractmethod
    def check(self, record: PairRecord) -> str | None:
        """Return None to keep the record, or the reason it is dropped."""

    def check_batch(self, records: list[PairRecord]) -> list[str | None]:
        return [self.check(r) for r in records]
