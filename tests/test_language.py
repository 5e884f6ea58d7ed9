from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from filters.language import (
    BINDING,
    LOW_CONFIDENCE,
    OTHER_LANGUAGE,
    PROBE_TEXTS,
    LanguageFilter,
    LanguageIdentifier,
    batch_predict_problem,
    check_batch_predict,
    default_model_path,
    fasttext_bindings,
    fold_lines,
    labels_to_consider,
    load_model,
    main,
    self_check,
)
from schemas.config import ConfigError
from schemas.recipe import LanguageConfig
from schemas.record import new_record

ENGLISH = "How can I clean my coffee machine at home without damaging it?"
ENGLISH_ANSWER = "Use a citric acid solution,\nrun it through the boiler twice,\nthen flush with clean water."
FRENCH = "Comment détartrer ma machine à espresso sans abîmer la chaudière ?"
GERMAN = "Wie entkalke ich meine Espressomaschine, ohne den Kessel zu beschädigen?"
SPANISH = "¿Cómo descalcifico mi máquina de espresso sin dañar la caldera?"


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model(None)


def pair(query: str, document: str, key: str = "1") -> dict[str, Any]:
    return new_record("se", key, query, document, file="Posts.xml", row=1)


def test_batch_prediction_returns_languages_with_scores(model: Any) -> None:
    identifier = LanguageIdentifier(model, ["en", "fr", "de", "es"], 0.65)
    verdicts = identifier.identify([ENGLISH, FRENCH, GERMAN, SPANISH, ENGLISH_ANSWER])
    assert [language for language, _, _ in verdicts] == ["en", "fr", "de", "es", "en"]
    assert all(0.65 <= score <= 1.0 and reason is None for _, score, reason in verdicts)


def test_filter_both_sides_records_document_language_and_lower_score(model: Any) -> None:
    language_filter = LanguageFilter(LanguageConfig(fields="both"))
    language_filter.setup()
    records = [pair(ENGLISH, ENGLISH_ANSWER, "1"), pair(FRENCH, ENGLISH_ANSWER, "2"), pair(ENGLISH, FRENCH, "3"), pair(ENGLISH, "ok", "4")]
    assert language_filter.check_batch(records) == [None, OTHER_LANGUAGE, OTHER_LANGUAGE, LOW_CONFIDENCE]
    query_score = LanguageIdentifier(model, ["en"], 0.65).identify([ENGLISH])[0][1]
    document_score = LanguageIdentifier(model, ["en"], 0.65).identify([ENGLISH_ANSWER])[0][1]
    assert records[0]["meta"]["lang"] == "en"
    assert records[0]["meta"]["lang_score"] == pytest.approx(min(query_score, document_score))
    assert records[2]["meta"]["lang"] == "fr"


def test_filter_pair_judges_query_and_document_as_one_text() -> None:
    short = "ok, works"  # too short for lid.176 alone
    model = FixedModel([[("en", 0.9)], [("fr", 0.95)]])
    joined = LanguageFilter(LanguageConfig(fields="pair"))
    joined.identifier = LanguageIdentifier(model, ["en"], 0.65)
    records = [pair(ENGLISH, short, "1"), pair(FRENCH, FRENCH, "2")]
    assert joined.check_batch(records) == [None, OTHER_LANGUAGE]
    assert model.calls == [([fold_lines(f"{ENGLISH}\n{short}"), fold_lines(f"{FRENCH}\n{FRENCH}")], joined.identifier.k)]  # one text per pair
    assert records[0]["meta"]["lang"] == "en" and records[0]["meta"]["lang_score"] == 0.9
    real = [pair(ENGLISH, "ok", "3")]
    assert LanguageFilter(LanguageConfig(fields="document")).check_batch(real) == [LOW_CONFIDENCE]
    assert LanguageFilter(LanguageConfig(fields="pair")).check_batch(real) == [None]


def test_filter_single_side_and_other_languages() -> None:
    french_only = LanguageFilter(LanguageConfig(fields="query", languages=["fr"]))
    records = [pair(FRENCH, ENGLISH_ANSWER), pair(ENGLISH, FRENCH)]
    assert french_only.check_batch(records) == [None, OTHER_LANGUAGE]
    assert records[0]["meta"]["lang"] == "fr" and records[1]["meta"]["lang"] == "en"
    document_only = LanguageFilter(LanguageConfig(fields="document", threshold=0.999))
    assert document_only.check_batch([pair(FRENCH, ENGLISH_ANSWER)]) == [LOW_CONFIDENCE]


class FixedModel:
    """A stand-in with fastText's batch predict shape, for the decision rule alone."""

    def __init__(self, answers: list[list[tuple[str, float]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[list[str], int]] = []

    def predict(self, texts: Sequence[str], k: int) -> tuple[list[list[str]], list[np.ndarray]]:
        self.calls.append((list(texts), k))
        answers = self.answers[: len(texts)]
        return [[f"__label__{lang}" for lang, _ in a] for a in answers], [np.array([p for _, p in a]) for a in answers]


def test_kept_language_below_the_top_prediction_counts_when_threshold_allows() -> None:
    model = FixedModel([[("fr", 0.55), ("en", 0.40)], [("fr", 0.55), ("en", 0.20)], [("en", 0.30), ("fr", 0.25)]])
    verdicts = LanguageIdentifier(model, ["en"], 0.35).identify(["a\nb", "c", "d"])
    assert verdicts == [("en", 0.40, None), ("fr", 0.55, OTHER_LANGUAGE), ("en", 0.30, LOW_CONFIDENCE)]
    assert model.calls == [(["a b", "c", "d"], 2)]  # one call, newlines folded, top 2 labels


def test_labels_to_consider() -> None:
    assert labels_to_consider(0.65) == 1
    assert labels_to_consider(0.5) == 2
    assert labels_to_consider(0.3) == 3
    assert labels_to_consider(0.0) == -1


def test_fold_lines() -> None:
    assert fold_lines(" line one\r\nline two\n\n\tthree ") == "line one line two three"


def test_model_paths(tmp_path: Any) -> None:
    default = Path(default_model_path())
    assert default == Path(__file__).resolve().parents[1] / "filters" / "data" / "lid.176.ftz"  # package data, no other wheel
    assert hashlib.sha256(default.read_bytes()).hexdigest() in (default.parent / "NOTICE.md").read_text()
    with pytest.raises(ConfigError, match="file not found"):
        load_model(str(tmp_path / "missing.bin"))
    # A remote path is copied through storage/ (tests/test_gcs_emulator.py loads one from gs://); one that
    # cannot be read is one line naming it.
    with pytest.raises(ConfigError, match=r"^language model: nosuch://bucket/lid.176.bin: "):
        load_model("nosuch://bucket/lid.176.bin")


def test_self_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert self_check() is None
    assert main(["--self-check"]) == 0
    assert "passed" in capsys.readouterr().out


def test_a_users_own_model_path_is_loaded(tmp_path: Path) -> None:
    own = tmp_path / "my-lid.ftz"
    shutil.copy(default_model_path(), own)
    language_filter = LanguageFilter(LanguageConfig(model=str(own), fields="query"))
    assert language_filter.check_batch([pair(ENGLISH, ENGLISH_ANSWER), pair(FRENCH, ENGLISH_ANSWER)]) == [None, OTHER_LANGUAGE]


def test_exactly_one_fasttext_binding_is_installed() -> None:
    assert fasttext_bindings() == [BINDING]


class LabelsOnly:
    """fasttext-predict 0.9.2.4's batch predict on a list: one label list per text, no probabilities."""

    def predict(self, texts: Sequence[str], k: int) -> tuple[list[str], ...]:
        return tuple(["__label__en"] * k for _ in texts)


class LabelsTwice:
    """A two-text answer of that build unpacks as (labels, probabilities), with labels where the numbers belong."""

    def predict(self, texts: Sequence[str], k: int) -> tuple[list[list[str]], list[list[str]]]:
        return [["__label__en"]] * len(texts), [["__label__fr"]] * len(texts)


class Raises:
    def predict(self, texts: Sequence[str], k: int) -> Any:
        raise ValueError("too many values to unpack (expected 2)\nfrom the C++ side")


class EmptyProbabilities:
    def predict(self, texts: Sequence[str], k: int) -> tuple[list[list[str]], list[np.ndarray]]:
        return [["__label__en"]] * len(texts), [np.array([])] * len(texts)


class OutOfRange:
    def predict(self, texts: Sequence[str], k: int) -> tuple[list[list[str]], list[np.ndarray]]:
        return [["__label__en"]] * len(texts), [np.array([3.5])] * len(texts)


@pytest.mark.parametrize("fake", [LabelsOnly(), LabelsTwice(), Raises(), EmptyProbabilities(), OutOfRange()], ids=type)
def test_a_batch_predict_without_probabilities_is_one_line_naming_the_binding(fake: Any) -> None:
    assert batch_predict_problem(fake) is not None
    with pytest.raises(ConfigError) as raised:
        check_batch_predict(fake, binding="fasttext-predict (/site/fasttext/__init__.py)")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("language model: the installed fastText binding fasttext-predict (/site/fasttext/__init__.py) returns no probabilities")
    assert f"pip install --force-reinstall --no-deps {BINDING}" in message


def test_the_real_binding_and_a_well_formed_fake_pass(model: Any) -> None:
    assert batch_predict_problem(model) is None
    assert batch_predict_problem(FixedModel([[("en", 0.9)]] * len(PROBE_TEXTS))) is None


def test_the_check_runs_at_first_use_before_any_record_is_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    import fasttext

    monkeypatch.setattr(fasttext, "load_model", lambda path: LabelsOnly())
    with pytest.raises(ConfigError, match=r"the installed fastText binding fasttext-numpy2 \(.*fasttext.*\) returns no probabilities"):
        load_model(None)
    records = [pair(ENGLISH, ENGLISH_ANSWER)]
    with pytest.raises(ConfigError, match="returns no probabilities from batch predict"):
        LanguageFilter(LanguageConfig()).check_batch(records)
    assert "lang" not in records[0]["meta"]


def test_self_check_names_a_broken_binding(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import fasttext

    monkeypatch.setattr(fasttext, "load_model", lambda path: LabelsOnly())
    assert main(["--self-check"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("language self-check failed: language model: the installed fastText binding") and "\n" not in error
