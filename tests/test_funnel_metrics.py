"""The books are counted with committed counter values where the runner has them, attempted ones only where it has none."""
from __future__ import annotations

from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.execution import MetricKey, MetricResult
from apache_beam.metrics.metricbase import MetricName

from pipelines.funnel import NAMESPACE, Funnel, build_funnel, format_funnel, read_counters
from report.overview import metrics_text


class Unsupported:
    """A MetricResult whose runner keeps no committed values and says so by raising (as Java's getCommitted does)."""

    def __init__(self, name: str, attempted: int) -> None:
        self.key = key(name)
        self.attempted = attempted

    @property
    def committed(self) -> int:
        raise NotImplementedError("committed metrics are not supported")


class FakeResult:
    """A finished pipeline's result holding ``counters`` as its MetricResults."""

    def __init__(self, counters: list[Any]) -> None:
        self.counters = counters

    def metrics(self) -> FakeResult:
        return self

    def query(self, _filter: Any = None) -> dict[str, list[Any]]:
        return {"counters": self.counters}


def key(name: str, step: str = "s") -> MetricKey:
    return MetricKey(step, MetricName(NAMESPACE, name))


def test_committed_values_are_used_where_the_runner_has_them() -> None:
    result = FakeResult([MetricResult(key("d|read|in"), 3, 3), MetricResult(key("d|read|in", "t"), 2, 2),
                         MetricResult(key("d|write|kept"), 0, 0)])
    assert read_counters(result) == ({"d|read|in": 5, "d|write|kept": 0}, "committed")


@pytest.mark.parametrize("unsupported", [
    lambda name, attempted: MetricResult(key(name), None, attempted),
    Unsupported,
])
def test_attempted_values_are_used_where_the_runner_has_no_committed_ones(unsupported: Any) -> None:
    result = FakeResult([unsupported("d|read|in", 4), unsupported("d|write|kept", 4)])
    assert read_counters(result) == ({"d|read|in": 4, "d|write|kept": 4}, "attempted")


def test_one_counter_without_committed_values_makes_every_counter_attempted() -> None:
    # Mixing would count one stage with retries and the next without: the books could not balance.
    result = FakeResult([MetricResult(key("d|read|in"), 4, 6), MetricResult(key("d|write|kept"), None, 6)])
    assert read_counters(result) == ({"d|read|in": 6, "d|write|kept": 6}, "attempted")


def test_a_retried_bundle_counts_once_and_the_books_balance() -> None:
    # A read bundle of 4 rows failed after counting and was retried: attempted counts it twice.
    result = FakeResult([
        MetricResult(key("d|read|in"), 10, 14),
        MetricResult(key("d|clean|in"), 10, 14),
        MetricResult(key("d|clean|kept"), 9, 12),
        MetricResult(key("d|clean|dropped:empty_document"), 1, 2),
        MetricResult(key("d|write|kept"), 9, 9),
    ])
    counters, kind = read_counters(result)
    entry = build_funnel(counters, ["d"])["d"]
    assert kind == "committed"
    assert (entry["read"], entry["dropped"], entry["written"], entry["balanced"]) == (10, 1, 9, True)
    attempted = {metric.key.metric.name: metric.attempted for metric in result.counters}
    assert not build_funnel(attempted, ["d"])["d"]["balanced"]  # what counting attempted values would give


def test_the_console_footer_and_the_report_say_which_values_were_used() -> None:
    entry = {**build_funnel({"d|read|in": 1, "d|write|kept": 1}, ["d"])["d"], "metrics": "attempted"}
    assert format_funnel({"d": entry}).splitlines()[-1] == (
        "books counted with attempted counter values, the runner keeps no committed ones (a retried bundle counts again)"
    )
    assert metrics_text({"a": {**entry, "metrics": "committed"}, "b": {**entry, "metrics": "committed"}}).startswith("committed")
    mixed = metrics_text({"a": {**entry, "metrics": "committed"}, "b": entry, "c": {"stages": []}})
    assert mixed.startswith("a: committed") and "; b: attempted" in mixed and mixed.endswith("; c: not recorded")


def count_rows(runner: str) -> tuple[dict[str, int], str]:
    """Count 5 rows with the funnel's counters on ``runner``; the counters it reports and their kind."""
    funnel = Funnel()

    def count(row: int) -> int:
        funnel.count("d", "read", "in")
        return row

    pipeline = beam.Pipeline(runner=runner)
    _ = pipeline | beam.Create(range(5)) | beam.Map(count)
    result = pipeline.run()
    result.wait_until_finish()
    return read_counters(result)


@pytest.mark.parametrize("runner", ["FnApiRunner", "BundleBasedDirectRunner"])
def test_local_runners_report_committed_values(runner: str) -> None:
    assert count_rows(runner) == ({"d|read|in": 5}, "committed")
