"""Source readers, one per recipe ``kind``."""
from __future__ import annotations

from pipelines.sources.amazon_reviews import AmazonReviewsSource
from pipelines.sources.base import Source
from pipelines.sources.generic import CsvSource, JsonlSource, ParquetSource
from pipelines.sources.news import NewsSource
from pipelines.sources.quora import QuoraSource
from pipelines.sources.reddit import RedditSource
from pipelines.sources.shards import ShardsSource
from pipelines.sources.stackexchange import StackExchangeSource

SOURCES: dict[str, type[Source]] = {
    "jsonl": JsonlSource,
    "csv": CsvSource,
    "parquet": ParquetSource,
    "stackexchange": StackExchangeSource,
    "quora": QuoraSource,
    "amazon_reviews": AmazonReviewsSource,
    "news": NewsSource,
    "reddit": RedditSource,
    "shards": ShardsSource,
}
