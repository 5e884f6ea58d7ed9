"""fastText language identification: keep pairs whose text is in one of the recipe's languages.

The default model is ``lid.176.ftz``, fastText's 176-language model, shipped as pairmill's own package
data (``filters/data/``, CC BY-SA 3.0 by Facebook: see ``filters/data/NOTICE.md``); a recipe may name
another fastText model file (``lid.176.bin``, GlotLID) by path, local or on any Beam filesystem (copied once
per machine into the local cache, ``storage.cache``). The binding is fasttext-numpy2.
Every batch is one ``predict`` call over all its texts.

Loading a model checks, before any record is judged, that the installed ``fasttext`` module's batch
predict returns probabilities (the fasttext-predict build returns labels only): a binding that does not
is a one-line ``ConfigError`` naming it. Workers check at first use; ``check_binding`` lets the launcher
check its own install before the pipeline starts, so the command line stops with that one line. ``python -m filters.language --self-check`` also checks that the
default model answers known English and French sentences.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from filters.base import RecordFilter
from schemas.config import ConfigError
from schemas.recipe import LanguageConfig
from schemas.record import PairRecord
from storage.cache import local_copy
from storage.files import StorageError

LABEL_PREFIX = "__label__"
OTHER_LANGUAGE = "other_language"
LOW_CONFIDENCE = "low_confidence"
# The one fastText binding pairmill installs (setup.py): its batch predict returns probabilities under NumPy 2.
BINDING = "fasttext-numpy2"
DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "lid.176.ftz"
# Three texts, so a batch predict that answers one label list per text (and nothing else) cannot pass
# for a (labels, probabilities) pair.
PROBE_TEXTS = [
    "The weather is lovely today, so we are going for a long walk in the park.",
    "Il fait très beau aujourd'hui, alors nous allons faire une longue promenade dans le parc.",
    "Das Wetter ist heute wunderschön, also machen wir einen langen Spaziergang im Park.",
]


def default_model_path() -> str:
    """``lid.176.ftz`` in the installed pairmill package (``filters/data/``)."""
    if not DEFAULT_MODEL.is_file():
        raise ConfigError(f"language model: {DEFAULT_MODEL} is missing from the installed pairmill package; reinstall pairmill")
    return str(DEFAULT_MODEL)


def fasttext_bindings() -> list[str]:
    """The installed distributions that provide the ``fasttext`` module; a whole install has exactly [BINDING]."""
    return sorted(set(importlib.metadata.packages_distributions().get("fasttext", [])))


def describe_binding(module: Any) -> str:
    """The distribution(s) behind the imported ``fasttext`` module and where it was loaded from."""
    names = ", ".join(fasttext_bindings()) or "an unknown distribution"
    where = getattr(module, "__file__", None)
    return f"{names} ({where})" if where else names


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def batch_predict_problem(model: Any) -> str | None:
    """None when ``model.predict`` over a batch gives, for every text, labels with probabilities in [0, 1]."""
    count = len(PROBE_TEXTS)
    try:
        result = model.predict(PROBE_TEXTS, k=1)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            size = f" of {len(result)} items" if isinstance(result, (tuple, list)) else ""
            return f"a {type(result).__name__}{size} for {count} texts, not (labels, probabilities)"
        labels, probabilities = list(result[0]), list(result[1])
    except Exception as err:  # any failure here is the binding's, reported in one line
        return f"{type(err).__name__}: {one_line(err)}"
    if len(labels) != count or len(probabilities) != count:
        return f"{len(labels)} label lists and {len(probabilities)} probability lists for {count} texts"
    for text_labels, text_probabilities in zip(labels, probabilities, strict=True):
        values = list(text_probabilities) if not isinstance(text_probabilities, str) else [text_probabilities]
        if not values or len(values) != len(text_labels):
            return f"{len(text_labels)} labels but {len(values)} probabilities for one text"
        for label, value in zip(text_labels, values, strict=True):
            if not isinstance(label, str) or isinstance(value, (str, bytes)):
                return f"got {one_line(repr(label))[:40]} and {one_line(repr(value))[:40]} where a label and a probability belong"
            try:
                probability = float(value)
            except (TypeError, ValueError):
                return f"got {one_line(repr(value))[:40]} where a probability belongs"
            if not 0.0 <= probability <= 1.0:
                return f"probability {probability} is outside [0, 1]"
    return None


def check_batch_predict(model: Any, binding: str | None = None) -> None:
    """Raise a one-line ``ConfigError`` naming the binding when the model's batch predict returns no probabilities."""
    problem = batch_predict_problem(model)
    if problem is None:
        return
    if binding is None:
        binding = describe_binding(sys.modules.get("fasttext"))
    others = [name for name in fasttext_bindings() if re.sub(r"[-_.]+", "-", name).lower() != BINDING]
    fix = (f"pip uninstall -y {' '.join(others)} && " if others else "") + f"pip install --force-reinstall --no-deps {BINDING}"
    raise ConfigError(
        f"language model: the installed fastText binding {binding} returns no probabilities from batch predict ({problem}); "
        f"pairmill needs {BINDING}: {fix}"
    )


def load_model(path: str | None) -> Any:
    """The fastText model at a local ``path`` (default: the packaged lid.176.ftz), its batch predict checked."""
    try:
        import fasttext
    except ImportError as err:
        raise ConfigError(f"language model: no fastText binding is installed ({one_line(err)}); pip install {BINDING}") from None

    path = path or default_model_path()
    if "://" in path:
        try:
            path = local_copy(path)  # a model on any Beam filesystem, copied once per machine
        except StorageError as err:
            raise ConfigError(f"language model: {err}") from None
    if not os.path.isfile(path):
        raise ConfigError(f"language model: file not found: {path}")
    model = fasttext.load_model(path)
    check_batch_predict(model)
    return model


def check_binding() -> None:
    """The launcher's check before a pipeline runs: the installed binding's batch predict, tried on the
    packaged model (a recipe's own model may be where only workers read it). About 10 ms."""
    load_model(None)


def fold_lines(text: str) -> str:
    """fastText predicts one line: every run of whitespace, newlines included, becomes one space."""
    return " ".join(text.split())


def labels_to_consider(threshold: float) -> int:
    """How many top labels can reach ``threshold`` (probabilities sum to at most 1); -1 asks for all."""
    return -1 if threshold <= 0 else max(1, math.floor(1 / threshold))


class LanguageIdentifier:
    """Batched fastText prediction of the best kept language per text, with its probability."""

    def __init__(self, model: Any, languages: Sequence[str], threshold: float) -> None:
        self.model = model
        self.languages = frozenset(languages)
        self.threshold = threshold
        self.k = labels_to_consider(threshold)

    def identify(self, texts: Sequence[str]) -> list[tuple[str, float, str | None]]:
        """Per text: (language, probability, drop reason or None) from one batched predict call.

        The language is the best kept language that reaches the threshold when there is one, else the
        top prediction; the reason is ``other_language`` when the top prediction is not a kept language
        and none reaches the threshold, ``low_confidence`` when it is one but below the threshold.
        """
        labels, probabilities = self.model.predict([fold_lines(t) for t in texts], k=self.k)
        verdicts: list[tuple[str, float, str | None]] = []
        for text_labels, text_probabilities in zip(labels, probabilities, strict=True):
            top = text_labels[0].removeprefix(LABEL_PREFIX)
            top_probability = float(text_probabilities[0])
            verdict: tuple[str, float, str | None] = (top, top_probability, OTHER_LANGUAGE if top not in self.languages else LOW_CONFIDENCE)
            for label, probability in zip(text_labels, text_probabilities, strict=True):
                language = label.removeprefix(LABEL_PREFIX)
                if probability < self.threshold:
                    break
                if language in self.languages:
                    verdict = (language, float(probability), None)
                    break
            verdicts.append(verdict)
        return verdicts


class LanguageFilter(RecordFilter):
    """Drop pairs whose query, document, both or the two joined (``fields``) are not in a kept language.

    ``meta.lang`` is the document's language (the query's when only the query is checked, the joined
    text's with ``pair``) and ``meta.lang_score`` its probability; with ``fields: both`` the score is the
    lower of the two sides'.
    A pair fails with ``other_language`` if either checked side does, else ``low_confidence``.
    """

    stage = "language"

    def __init__(self, config: LanguageConfig) -> None:
        self.config = config
        self.batch_size = config.batch_size
        self.identifier: LanguageIdentifier | None = None

    def setup(self) -> None:
        if self.identifier is None:
            self.identifier = LanguageIdentifier(load_model(self.config.model), self.config.languages, self.config.threshold)

    def check(self, record: PairRecord) -> str | None:
        return self.check_batch([record])[0]

    def check_batch(self, records: list[PairRecord]) -> list[str | None]:
        if self.identifier is None:
            self.setup()
        assert self.identifier is not None  # set by setup
        texts_per_side = self.texts_per_side(records)
        verdicts = self.identifier.identify([text for texts in texts_per_side for text in texts])
        by_side = [verdicts[i * len(records) : (i + 1) * len(records)] for i in range(len(texts_per_side))]
        reasons: list[str | None] = []
        for i, record in enumerate(records):
            side_verdicts = [side[i] for side in by_side]
            language, _, _ = side_verdicts[-1]
            record["meta"]["lang"] = language
            record["meta"]["lang_score"] = min(probability for _, probability, _ in side_verdicts)
            failures = {reason for _, _, reason in side_verdicts if reason is not None}
            reasons.append(OTHER_LANGUAGE if OTHER_LANGUAGE in failures else (LOW_CONFIDENCE if failures else None))
        return reasons

    def texts_per_side(self, records: list[PairRecord]) -> list[list[str]]:
        """The texts fastText judges, one list per checked side (``pair``: query and document as one text)."""
        fields = self.config.fields
        if fields == "pair":
            return [[f"{record['query']}\n{record['document']}" for record in records]]
        sides: list[Literal["query", "document"]] = ["query", "document"] if fields == "both" else [fields]
        return [[record[side] for record in records] for side in sides]


SELF_CHECK_LANGUAGES = ["en", "fr", "de"]  # of PROBE_TEXTS, in order


def self_check() -> str | None:
    """None when the default model loads (its batch predict checked) and answers the probe texts correctly."""
    try:
        model = load_model(None)
    except Exception as err:  # the installer needs the one-line reason, whatever it is
        return f"language self-check failed: {one_line(err)}"
    labels, probabilities = model.predict(PROBE_TEXTS, k=1)
    for expected, text_labels, text_probabilities in zip(SELF_CHECK_LANGUAGES, labels, probabilities, strict=True):
        got, probability = text_labels[0].removeprefix(LABEL_PREFIX), float(text_probabilities[0])
        if got != expected or not 0.5 < probability <= 1.0:
            return f"language self-check failed: expected {expected} with probability above 0.5, got {got} {probability:.3f}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filters.language", description=__doc__.splitlines()[0])
    parser.add_argument("--self-check", action="store_true", help="check the default model and the fasttext binding")
    args = parser.parse_args(argv)
    if not args.self_check:
        parser.print_help()
        return 2
    problem = self_check()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    binding = describe_binding(sys.modules.get("fasttext"))
    print(f"language self-check passed: {default_model_path()} with {binding}: batch predict returns labels and probabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
