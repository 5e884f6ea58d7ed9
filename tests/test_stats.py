"""Distributions measured inside the build (exact fixed-bucket histograms) and the run time per step."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import apache_beam as beam

from pipelines.stats import CollectStats, SummarizeFn, stage_seconds
from schemas.record import dropped, new_record
from schemas.stats import HISTOGRAM_EDGES, LENGTH_EDGES, bucket_of, cluster_size_label, cluster_size_order, summarize
from storage.builds import read_stats, stats_path


def sample_records(n: int) -> list[dict[str, Any]]:
    return [
        new_record("ds", str(i), "q" * (i % 7), "d" * (10 * i), "f.jsonl", i,
                   lang="en" if i % 3 else "fr", lang_score=(i % 10) / 10, consistency_rank=i % 4, consistency_score=0.5)
        for i in range(n)
    ]


def test_buckets_are_half_open_and_clamped() -> None:
    edges = [0, 1, 2, 4]
    assert [bucket_of(edges, v) for v in (-5, 0, 0.99, 1, 3.9, 4, 1e9)] == [0, 0, 0, 1, 2, 2, 2]
    assert LENGTH_EDGES[:10] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert LENGTH_EDGES[-1] == 2**20


def test_summary_counts_each_value_and_skips_missing_ones() -> None:
    records = [
        new_record("ds", "a", "abc", "d" * 9, "f", 1, lang="en", lang_score=0.99, consistency_rank=0, consistency_score=-0.25),
        new_record("ds", "b", "", "d" * 9, "f", 2, lang="de", lang_score=float("nan")),
        new_record("ds", "c", "xyz", "d", "f", 3, positive_score=0.8, negative_scores=[0.1, 0.7, 0.3]),
    ]
    summary = summarize(("kept", r) for r in records)["kept"]
    histograms = summary["histograms"]
    assert summary["records"] == 3 and summary["lang"] == {"en": 1, "de": 1}
    assert histograms["query_chars"][bucket_of(LENGTH_EDGES, 3)] == 2 and histograms["query_chars"][0] == 1
    assert histograms["document_chars"][LENGTH_EDGES.index(8)] == 2  # 9 characters: bucket [8, 10)
    assert sum(histograms["lang_score"]) == 1 and histograms["lang_score"][-1] == 1  # NaN is not counted
    assert histograms["consistency_rank"][0] == 1 and sum(histograms["consistency_rank"]) == 1
    assert histograms["consistency_score"][HISTOGRAM_EDGES["consistency_score"].index(-0.26)] == 1
    assert histograms["positive_score"][HISTOGRAM_EDGES["positive_score"].index(0.8)] == 1
    assert histograms["hardest_negative_score"][HISTOGRAM_EDGES["hardest_negative_score"].index(0.7)] == 1


def test_merged_partial_summaries_equal_one_pass() -> None:
    fn = SummarizeFn()
    items = [("kept" if i % 5 else "dropped:clean", r) for i, r in enumerate(sample_records(60))]
    partials = []
    for part in (items[:17], items[17:40], items[40:]):
        accumulator = fn.create_accumulator()
        for item in part:
            accumulator = fn.add_input(accumulator, item)
        partials.append(accumulator)
    assert fn.extract_output(fn.merge_accumulators(partials)) == summarize(items)


def test_collect_stats_in_beam_writes_the_exact_summary(tmp_path: Path) -> None:
    kept = sample_records(200)
    dropped_clean = [dropped(r, "clean", "too_short") for r in sample_records(7)]
    dropped_consistency = [dropped(r, "consistency", "inconsistent") for r in sample_records(30)[10:]]
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        records = pipeline | "kept" >> beam.Create(kept) | "spread" >> beam.Reshuffle()
        clean = pipeline | "clean" >> beam.Create(dropped_clean)
        consistency = pipeline | "consistency" >> beam.Create(dropped_consistency)
        (records, clean, consistency) | "ds: stats" >> CollectStats("ds", str(tmp_path))
    assert stats_path(str(tmp_path), "ds") == str(tmp_path / "_stats" / "ds.json")
    stats = read_stats(str(tmp_path), "ds")
    assert stats is not None and stats["dataset"] == "ds" and stats["edges"] == HISTOGRAM_EDGES
    expected = summarize(
        [("kept", r) for r in kept]
        + [("dropped:clean", d["record"]) for d in dropped_clean]
        + [("dropped:consistency", d["record"]) for d in dropped_consistency]
    )
    assert stats["groups"] == expected
    assert {g: s["records"] for g, s in stats["groups"].items()} == {"kept": 200, "dropped:clean": 7, "dropped:consistency": 20}
    assert stats["groups"]["kept"]["lang"] == {"en": 133, "fr": 67}


def test_collect_stats_of_an_empty_dataset_still_writes_a_file(tmp_path: Path) -> None:
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        (pipeline | beam.Create([]),) | "ds: stats" >> CollectStats("ds", str(tmp_path))
    stats = read_stats(str(tmp_path), "ds")
    assert stats is not None and stats["groups"] == {}
    assert read_stats(str(tmp_path), "other") is None


def sleep_then_pass(x: int) -> int:
    time.sleep(0.01)
    return x


def test_stage_seconds_adds_up_the_transforms_of_each_step() -> None:
    pipeline = beam.Pipeline(runner="FnApiRunner")
    for dataset, items in (("a", 30), ("ab", 1)):
        (
            pipeline
            | f"{dataset}: read" >> beam.Create(range(items))
            | f"{dataset}: clean" >> beam.Map(sleep_then_pass)
            | f"{dataset}: write" >> beam.Map(str)
        )
    result = pipeline.run()
    result.wait_until_finish()
    seconds = stage_seconds(result, ["a", "ab"])
    assert set(seconds["a"]) == {"read", "clean", "write"} and set(seconds["ab"]) == {"read", "clean", "write"}
    assert 0.2 <= seconds["a"]["clean"] <= 5  # 30 sleeps of 10 ms
    assert seconds["ab"]["clean"] < seconds["a"]["clean"]
    assert stage_seconds(object(), ["a"]) == {}  # a runner without monitoring metrics


def test_cluster_size_labels() -> None:
    labels = [cluster_size_label(n) for n in (2, 8, 9, 16, 17, 100)]
    assert labels == ["2", "8", "9-16", "9-16", "17-32", "65-128"]
    assert sorted(["17-32", "3", "9-16", "2"], key=cluster_size_order) == ["2", "3", "9-16", "17-32"]
