"""Source readers, one per recipe ``kind``."""
from __future__ import annotations

from pipelines.sources.base import Source
from pipelines.sources.generic import CsvSource, JsonlSource, ParquetSource

SOURCES: dict[str, type[Source]] = {
    "jsonl": JsonlSource,
    "csv": CsvSource,
    "parquet": ParquetSource,
}
