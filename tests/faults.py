"""Fault injection: bad input for every reader kind, built in one pipeline per fault class.

Each case is one dataset of a recipe: a few good rows in the kind's published format plus one fault.
The good rows a file still holds are counted by a reference decoder (tests/reference_decoders.py: a
plain reader of each format that reads a damaged stream up to its first error), never assumed. A case is
handled when the build finishes, the dataset's books balance, every recovered good row is written or in
``_rejected`` with a reason (once: not both, not twice), nothing else is written, and the fault is in
``_rejected`` with its reason. ``python -m tests.faults`` prints the summary table; tests/test_faults.py
asserts it.
"""
from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import py7zr
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from tests.reference_decoders import Row, good_rows

GOOD_ROWS = 6
MANY_ROWS = 20_000
BIG_RECORD_BYTES = 50 * 1024 * 1024


def _jsonl(rows: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" for r in rows]


def _pairs() -> list[tuple[str, str]]:
    return [(f"How do I fix problem number {i}?", f"Restart the machine and check cable {i} twice.") for i in range(GOOD_ROWS)]


# Each kind: recipe options, file name, and its good rows as lines (header/footer lines apart).
@dataclass
class Kind:
    name: str
    options: dict[str, Any]
    file_name: str
    header: list[bytes]
    rows: Callable[[list[tuple[str, str]]], list[bytes]]
    footer: list[bytes]
    bad_row: bytes  # a row with a wrong type or a missing field in this format


def _se_row(i: int, title: str, body: str) -> bytes:
    from xml.sax.saxutils import quoteattr

    return f'  <row Id="{i + 1}" PostTypeId="1" Score="3" Title={quoteattr(title)} Body={quoteattr("<p>" + body + "</p>")} />\n'.encode()


KINDS = [
    Kind("jsonl", {"fields": {"query": "q", "document": "d"}}, "data.jsonl", [],
         lambda pairs: _jsonl([{"q": q, "d": d} for q, d in pairs]), [], b'{"q": 5, "d": "numeric query"}\n'),
    Kind("csv", {"fields": {"query": "q", "document": "d"}}, "data.csv", [b"q,d\n"],
         lambda pairs: [f'"{q}","{d}"\n'.encode() for q, d in pairs], [], b'"only one column"\n'),
    Kind("stackexchange", {"mode": "title_body"}, "Posts.xml", [b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n', b"<posts>\n"],
         lambda pairs: [_se_row(i, q, d) for i, (q, d) in enumerate(pairs)], [b"</posts>\n"], b'  <row Id="90" PostTypeId="1" Title="broken <row\n'),
    Kind("quora", {}, "quora_duplicate_questions.tsv", [b"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"],
         lambda pairs: [f"{i}\t{2 * i}\t{2 * i + 1}\t{q}\t{d}\t1\n".encode() for i, (q, d) in enumerate(pairs)], [], b"77\t1\t2\tmissing columns\n"),
    Kind("amazon_reviews", {}, "reviews.json", [],
         lambda pairs: _jsonl([{"reviewerID": f"R{i}", "asin": f"A{i}", "summary": q, "reviewText": d, "overall": 5.0, "unixReviewTime": 1500000000 + i}
                               for i, (q, d) in enumerate(pairs)]), [],
         b'{"reviewerID": "R9", "asin": "A9", "summary": "x", "reviewText": 7, "overall": 5.0, "unixReviewTime": 1}\n'),
    Kind("news", {"mode": "cnn_dailymail"}, "cnn.jsonl", [],
         lambda pairs: _jsonl([{"id": f"{i:040x}", "highlights": q, "article": d} for i, (q, d) in enumerate(pairs)]), [],
         b'{"id": "bad", "highlights": "no article"}\n'),
    Kind("reddit", {}, "submissions.jsonl", [],
         lambda pairs: _jsonl([{"id": f"s{i}", "title": q, "selftext": d, "subreddit": "fixit", "score": 1} for i, (q, d) in enumerate(pairs)]), [],
         b'{"id": "s99", "title": ["not", "a", "string"], "selftext": "x"}\n'),
]


def _compress(data: bytes, fmt: str) -> bytes:
    compressors: dict[str, Callable[[bytes], bytes]] = {
        "gz": gzip.compress, "bz2": bz2.compress, "zst": zstandard.ZstdCompressor().compress, "xz": lzma.compress}
    return compressors[fmt](data)


@dataclass
class Case:
    fault: str
    kind: Kind
    good: int | None  # good rows the input holds; None for a damaged file (the reference decoder counts them)
    reason: str | None  # the rejected reason the fault must produce (None: nothing to reject)
    write: Callable[[Path], list[str]]  # writes the inputs, returns the recipe paths


def _plain(kind: Kind, rows: list[bytes]) -> bytes:
    return b"".join(kind.header + rows + kind.footer)


def _cases_for(kind: Kind) -> list[Case]:
    good_rows = kind.rows(_pairs())
    data = _plain(kind, good_rows)
    cases = []

    def file_case(fault: str, name: str, content: bytes, good: int | None, reason: str | None) -> Case:
        def write(folder: Path) -> list[str]:
            (folder / name).write_bytes(content)
            return [str(folder / name)]
        return Case(fault, kind, good, reason, write)

    for fmt in ("gz", "zst", "bz2", "xz"):
        compressed = _compress(data, fmt)
        # Cut inside the last tenth: the rows before are readable (how many depends on the codec's blocks).
        cases.append(file_case(f"truncated .{fmt}", f"{kind.file_name}.{fmt}", compressed[: len(compressed) * 9 // 10], None, "truncated_or_corrupt_file"))
        # Damage late in the stream: the rows before it are recoverable where the codec emits as it decodes.
        corrupt = bytearray(compressed)
        for i in range(len(corrupt) * 4 // 5, len(corrupt) * 4 // 5 + 8):
            corrupt[i] ^= 0xFF
        # gzip, bzip2 and xz carry checksums; a zstd frame written without one can decode to garbage rows,
        # which must then be rejected row by row (whatever their reason).
        reason = "*" if fmt == "zst" else "truncated_or_corrupt_file"
        cases.append(file_case(f"corrupt .{fmt}", f"{kind.file_name}.{fmt}", bytes(corrupt), None, reason))
    if kind.name == "jsonl":
        # Many rows: zstd blocks (128 KiB of text each) before the damage decode on their own.
        many = _plain(kind, kind.rows([(f"How do I fix problem number {i}?", f"Restart the machine and check cable {i} twice.")
                                       for i in range(MANY_ROWS)]))
        corrupt = bytearray(_compress(many, "zst"))
        for i in range(len(corrupt) * 4 // 5, len(corrupt) * 4 // 5 + 8):
            corrupt[i] ^= 0xFF
        cases.append(file_case("corrupt .zst, many blocks", f"{kind.file_name}.zst", bytes(corrupt), None, "*"))
    invalid = [*good_rows[:3], good_rows[3].replace(b"problem", b"probl\xff\xfem"), *good_rows[4:]]
    cases.append(file_case("invalid UTF-8", kind.file_name, _plain(kind, invalid), GOOD_ROWS - 1, "invalid_utf8"))
    cases.append(file_case("malformed row" if kind.name == "stackexchange" else "wrong type / missing field",
                           kind.file_name, _plain(kind, [*good_rows[:2], kind.bad_row, *good_rows[2:]]), GOOD_ROWS, "*"))
    cases.append(file_case("empty file", kind.file_name, b"", 0, None))
    big = kind.rows([*_pairs(), ("A very long record", "word " * (BIG_RECORD_BYTES // 5))])[-1:]
    cases.append(file_case("50 MB single record", kind.file_name, _plain(kind, good_rows + big), GOOD_ROWS + 1, None))

    def vanished(folder: Path) -> list[str]:
        (folder / kind.file_name).write_bytes(data)
        (folder / f"gone-{kind.file_name}").write_bytes(data)
        return [str(folder / kind.file_name), str(folder / f"gone-{kind.file_name}")]
    cases.append(Case("file vanishes after listing", kind, GOOD_ROWS, "file_vanished", vanished))
    if kind.name == "stackexchange":
        def archive(folder: Path) -> list[str]:
            path = folder / "fixit.stackexchange.com.7z"
            with py7zr.SevenZipFile(path, "w") as z:
                z.writestr(data * 200, "Posts.xml")
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            return [str(path)]
        cases.append(Case("truncated .7z", kind, None, "truncated_or_corrupt_file", archive))
    if kind.name in ("csv", "quora"):
        extra = [*good_rows[:2], good_rows[2].rstrip(b"\n") + (b",extra\n" if kind.name == "csv" else b"\textra\n"), *good_rows[3:]]
        cases.append(file_case("unexpected extra column", kind.file_name, _plain(kind, extra), GOOD_ROWS - 1, "wrong_column_count"))
    return cases


def parquet_cases() -> list[Case]:
    kind = Kind("parquet", {"fields": {"query": "q", "document": "d"}}, "data.parquet", [], lambda pairs: [], [], b"")
    table = pa.table({"q": [q for q, _ in _pairs()], "d": [d for _, d in _pairs()], "extra": list(range(GOOD_ROWS))})

    def good(folder: Path) -> list[str]:
        pq.write_table(table, folder / "data.parquet")
        return [str(folder / "data.parquet")]

    def truncated(folder: Path) -> list[str]:
        good(folder)
        path = folder / "data.parquet"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return [str(path)]

    def wrong_type(folder: Path) -> list[str]:
        pq.write_table(pa.table({"q": [1, 2], "d": ["a", "b"]}), folder / "data.parquet")
        return [str(folder / "data.parquet")]

    return [
        Case("unexpected extra column", kind, GOOD_ROWS, None, good),
        Case("truncated parquet", kind, None, "corrupt_parquet", truncated),
        Case("wrong type / missing field", kind, 0, "wrong_type:q", wrong_type),
    ]


def all_cases() -> list[Case]:
    return [case for kind in KINDS for case in _cases_for(kind)] + parquet_cases()


@dataclass
class Outcome:
    case: Case
    handled: bool
    recovered: int  # good rows the reference decoder finds in the case's files
    lost: int  # recovered good rows neither written nor rejected
    note: str


def _written_key(record: Mapping[str, Any]) -> tuple[str, str]:
    return " ".join(record["query"].split()), " ".join(record["document"].split())


def _row_key(row: Row) -> tuple[str, str]:
    return " ".join(row.query.split()), " ".join(row.document.split())


def check_books(recovered: list[Row], written: Sequence[Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]]) -> tuple[int, list[str]]:
    """Every recovered good row is written or rejected with a reason, exactly once; nothing else is written.

    A rejected row stands for a good row when its raw text is the row's line.
    Returns the good rows lost and the problems found.
    """
    expected = Counter(_row_key(r) for r in recovered)
    first = {_row_key(r): r for r in reversed(recovered)}
    kept = Counter(_written_key(r) for r in written)
    lost, missing, twice = 0, [], []
    for row_key, count in expected.items():
        row = first[row_key]
        in_rejected = sum(1 for r in rejected if r["reason"] and row.raw and r["raw"].strip() == row.raw.strip())
        accounted = kept[row_key] + in_rejected
        if accounted < count:
            lost += count - accounted
            missing.append(row.query)
        elif accounted > count:
            twice.append(f"{row.query!r} (written {kept[row_key]}, rejected {in_rejected}, in the file {count})")
    problems = []
    if missing:
        problems.append(f"{lost} good rows neither written nor rejected, first {missing[0]!r}")
    if twice:
        problems.append(f"{len(twice)} good rows counted twice, first {twice[0]}")
    invented = kept - expected
    if invented:
        problems.append(f"{sum(invented.values())} written rows that the reference decoder does not find: {sorted(invented)[:2]}")
    return lost, problems


def run_fault_class(cases: list[Case], folder: Path) -> list[Outcome]:
    """Build every case of one fault class in one pipeline and judge each dataset."""
    from pipelines.build import run_build
    from pipelines.sources import base
    from schemas.recipe import parse_recipe
    from storage.builds import iter_jsonl_zst, iter_records

    sources, vanishing = [], []
    for i, case in enumerate(cases):
        case_dir = folder / f"case{i}"
        case_dir.mkdir(parents=True)
        paths = case.write(case_dir)
        vanishing += [p for p in paths if "/gone-" in p]
        sources.append({"dataset": f"case{i}_{case.kind.name}", "kind": case.kind.name, "paths": paths, **case.kind.options})
    recipe = parse_recipe({"output": str(folder / "out"), "sources": sources, "shards": {"records_per_shard": 1000}}, "faults")
    real_match = base.match_paths

    def match_then_vanish(patterns: list[str], where: str) -> list[str]:
        listed = real_match(patterns, where)
        for path in set(listed) & set(vanishing):
            os.remove(path)
        return listed

    with mock.patch("pipelines.build.match_paths", match_then_vanish):
        report = run_build(recipe, ["--runner=FnApiRunner"])
    outcomes = []
    for source, case in zip(sources, cases, strict=True):
        dataset = source["dataset"]
        entry = report["datasets"][dataset]
        written = list(iter_records(str(folder / "out" / dataset)))
        rejected_dir = folder / "out" / "_rejected" / dataset
        rejected = [r for name in sorted(os.listdir(rejected_dir)) for r in iter_jsonl_zst(str(rejected_dir / name))] if rejected_dir.is_dir() else []
        reasons = [r["reason"] for r in rejected]
        recovered = [row for path in source["paths"] for row in good_rows(case.kind.name, Path(path))]
        problems = []
        if not entry["balanced"]:
            problems.append("books do not balance")
        if len(written) != entry["written"]:
            problems.append(f"{len(written)} records in shards, report says {entry['written']}")
        if case.good is not None and len(recovered) != case.good:
            problems.append(f"the reference decoder finds {len(recovered)} good rows, the case holds {case.good}")
        lost, book_problems = check_books(recovered, written, rejected)
        problems += book_problems
        if case.reason == "*" and not reasons:
            problems.append("the bad row is not in _rejected")
        elif case.reason not in (None, "*") and case.reason not in reasons:
            problems.append(f"no rejected row with reason {case.reason} (got {sorted(set(reasons))})")
        note = f"recovered {len(recovered)}, written {len(written)}, rejected {sorted(set(reasons)) or '-'}"
        outcomes.append(Outcome(case, not problems, len(recovered), lost, "; ".join([*problems, note])))
    return outcomes


def run_all(folder: Path) -> list[Outcome]:
    by_fault: dict[str, list[Case]] = {}
    for case in all_cases():
        by_fault.setdefault(case.fault, []).append(case)
    outcomes = []
    for i, cases in enumerate(by_fault.values()):
        outcomes += run_fault_class(cases, folder / f"fault{i}")
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    rows: dict[str, list[int]] = {}
    for o in outcomes:
        tried, handled, recovered, lost = rows.setdefault(o.case.fault, [0, 0, 0, 0])
        rows[o.case.fault] = [tried + 1, handled + o.handled, recovered + o.recovered, lost + o.lost]
    lines = [f"{'fault class':<30} {'cases':>6} {'handled':>8} {'good rows':>10} {'records lost':>13}"]
    lines += [f"{fault:<30} {tried:>6} {handled:>8} {good:>10} {lost:>13}" for fault, (tried, handled, good, lost) in rows.items()]
    total = [sum(r[i] for r in rows.values()) for i in range(4)]
    lines.append(f"{'total':<30} {total[0]:>6} {total[1]:>8} {total[2]:>10} {total[3]:>13}")
    lines += [f"  not handled: {o.case.fault} / {o.case.kind.name}: {o.note}" for o in outcomes if not o.handled]
    return "\n".join(lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as work:
        results = run_all(Path(work))
    print(summary(results))
    sys.exit(0 if all(o.handled and o.lost == 0 for o in results) else 1)
