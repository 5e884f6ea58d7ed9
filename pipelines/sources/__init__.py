"""Source readers, one per recipe ``kind``.

A kind is named once, in schemas/sources.py, with its options class; each reader is listed here by
that options class, so no kind can be spelled differently here and a kind without a reader stops
the import.
"""
from __future__ import annotations

from pipelines.sources.amazon_reviews import AmazonReviewsSource
from pipelines.sources.base import Source
from pipelines.sources.generic import CsvSource, JsonlSource, ParquetSource
from pipelines.sources.news import NewsSource
from pipelines.sources.quora import QuoraSource
from pipelines.sources.reddit import RedditSource
from pipelines.sources.shards import ShardsSource
from pipelines.sources.stackexchange import StackExchangeSource
from schemas import sources as options

READERS: dict[type, type[Source]] = {
    options.JsonlOptions: JsonlSource,
    options.CsvOptions: CsvSource,
    options.ParquetOptions: ParquetSource,
    options.StackExchangeOptions: StackExchangeSource,
    options.QuoraOptions: QuoraSource,
    options.AmazonReviewsOptions: AmazonReviewsSource,
    options.NewsOptions: NewsSource,
    options.RedditOptions: RedditSource,
    options.ShardsOptions: ShardsSource,
}


def _readers_by_kind() -> dict[str, type[Source]]:
    missing = sorted(kind for kind, options_class in options.SOURCE_OPTIONS.items() if options_class not in READERS)
    unused = sorted(c.__name__ for c in set(READERS) - set(options.SOURCE_OPTIONS.values()))
    if missing or unused:
        raise ImportError(f"pipelines.sources: kinds without a reader: {missing}; readers for options no kind has: {unused}")
    return {kind: READERS[options_class] for kind, options_class in options.SOURCE_OPTIONS.items()}


SOURCES: dict[str, type[Source]] = _readers_by_kind()
