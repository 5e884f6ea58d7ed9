"""Each reader kind's own recipe options (the keys of a ``sources`` entry beside dataset, kind and paths)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.config import non_negative, setting


@dataclass
class FieldMap:
    """Where query, document, id and score come from in a generic row.

    A path is a column name, or dotted keys and list indexes into nested JSON (``answers.0``,
    ``meta.title``). Without ``id`` the natural key is the file name and row number.
    """

    query: str = setting(help="field holding the query text")
    document: str = setting(help="field holding the document text")
    id: str | None = setting(None, help="field holding a stable natural key")
    score: str | None = setting(None, help="numeric field recorded as meta.source_score (for dedup's highest_score rule)")


@dataclass
class JsonlOptions:
    fields: FieldMap = setting(help="field mapping to query/document (and optional id, score)")


@dataclass
class CsvOptions:
    fields: FieldMap = setting(help="column mapping to query/document (and optional id, score)")
    delimiter: str | None = setting(None, help="field separator; default tab for .tsv files, comma otherwise")
    columns: list[str] | None = setting(None, help="column names for files without a header line")
    quoting: Literal["minimal", "none"] = setting("minimal", help="'none' for TSV files whose quotes are literal text")


@dataclass
class ParquetOptions:
    fields: FieldMap = setting(help="column mapping to query/document (and optional id, score)")
    batch_rows: int = setting(8192, check=non_negative, help="rows read per Arrow batch")


@dataclass
class StackExchangeOptions:
    """``paths`` name Posts.xml files (plain, .gz, .bz2, ...) or site dump archives (``coffee.stackexchange.com.7z``)."""

    mode: Literal["title_body", "question_answer", "duplicate_questions"] = setting(
        "title_body", help="title -> body; title + body -> accepted (else best) answer; duplicate question pairs from PostLinks.xml"
    )
    min_answer_score: int = setting(1, help="question_answer: score an answer needs when the question has no accepted answer")
    post_links: list[str] | None = setting(
        None, help="duplicate_questions: PostLinks.xml files or globs; default: the PostLinks file beside each Posts file, or in its .7z"
    )


@dataclass
class QuoraOptions:
    """quora_duplicate_questions.tsv (tab, quoted like CSV) or Kaggle's train.csv; pairs with is_duplicate 1."""

    delimiter: str | None = setting(None, help="field separator; default tab for .tsv files, comma otherwise")
    quoting: Literal["minimal", "none"] = setting("minimal", help="'none' for files whose quotes are literal text")
    columns: list[str] | None = setting(None, help="column names for files without a header line")


@dataclass
class AmazonReviewsOptions:
    """McAuley review JSON lines, 2014/2018 (summary, reviewText, overall) or 2023 (title, text, rating)."""

    min_rating: float | None = setting(None, help="skip reviews rated below this (1 to 5 stars)")
    min_body_chars: int = setting(0, check=non_negative, help="skip reviews whose text is shorter")


@dataclass
class NewsOptions:
    mode: Literal["cnn_dailymail", "xsum", "ag_news", "cc_news"] = setting(
        help="cnn_dailymail: highlights -> article; xsum: summary -> document; ag_news (CSV) and cc_news (JSON lines): title -> text"
    )
    delimiter: str | None = setting(None, help="CSV files: field separator; default tab for .tsv files, comma otherwise")
    quoting: Literal["minimal", "none"] = setting("minimal", help="CSV files: 'none' for files whose quotes are literal text")
    columns: list[str] | None = setting(
        None, help="CSV files without a header line: column names (ag_news defaults to label, title, description)"
    )


@dataclass
class RedditOptions:
    """Pushshift submissions JSON lines: title -> selftext, or post -> top comment when ``comments`` are given."""

    comments: list[str] | None = setting(None, help="Pushshift comments JSON lines files or globs: pair each post with its top comment")


@dataclass
class ShardsOptions:
    """``paths`` name the manifest.json of datasets pairmill built; ids keep their natural key, meta is kept."""


SOURCE_OPTIONS: dict[str, type] = {
    "jsonl": JsonlOptions,
    "csv": CsvOptions,
    "parquet": ParquetOptions,
    "stackexchange": StackExchangeOptions,
    "quora": QuoraOptions,
    "amazon_reviews": AmazonReviewsOptions,
    "news": NewsOptions,
    "reddit": RedditOptions,
    "shards": ShardsOptions,
}
