"""The datatrove side of benchmarks/build_vs_datatrove.py: pairmill's benchmark build, as datatrove stages.

Runs in its own venv (see build_vs_datatrove.py) and never imports pairmill; the settings come on the
command line from the pairmill side. A document's text is the pair's answer (pairmill's language filter
and MinHash judge the document by default) and its metadata holds the question (exact dedup keys on
both). Six executor runs, each stage's input the previous one's output, as datatrove's dedup needs:

1. JsonlReader -> PairClean -> LanguageFilter (the local lid.176.ftz) -> JsonlWriter -> ExactDedupSignature
2. ExactFindDedups (one task)
3. JsonlReader -> ExactDedupFilter -> JsonlWriter -> MinhashDedupSignature
4. MinhashDedupBuckets (one task per bucket: datatrove requires tasks to be a multiple of the buckets)
5. MinhashDedupCluster (one task: datatrove requires it)
6. JsonlReader -> MinhashDedupFilter -> JsonlWriter (WORK/output/*.jsonl.gz, the kept documents)

Prints one JSON line: datatrove's version, the documents kept after each step and each run's wall seconds.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import time
import unicodedata
from importlib.metadata import version
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter, ExactDedupSignature, ExactFindDedups
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
from datatrove.pipeline.filters import LanguageFilter
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.lid import FT176LID

# pairmill's text.forms, restated (this side cannot import pairmill): clean_form's steps that change
# generated text, and matching_form, the form exact dedup and drop_identical compare in.
_SPACES = re.compile(r"[^\S\n]+")
_NOT_WORD = re.compile(r"[\W_]+")


def clean_form(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", html.unescape(text))).strip()


def matching_form(text: str) -> str:
    return _NOT_WORD.sub(" ", text.lower()).strip()


def pair_adapter(self: Any, data: dict, path: str, id_in_file: int | str) -> dict:
    """A corpus row as a document: the answer as text, the question in metadata, the row's own id."""
    return {"text": data["answer"], "id": str(data["id"]), "metadata": {"question": data["question"]}}


def pair_key(doc: Document) -> str:
    """The exact-dedup content: pairmill's ``exact: pair`` key before hashing."""
    return matching_form(doc.metadata["question"]) + "\x1f" + matching_form(doc.text)


class PairClean(BaseFilter):
    """pairmill's clean stage: both sides cleaned, dropped when too short or long, or equal in matching form."""

    name = "pair clean"

    def __init__(self, query_chars: tuple[int, int], document_chars: tuple[int, int]) -> None:
        super().__init__()
        self.query_chars = query_chars
        self.document_chars = document_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        query, document = clean_form(doc.metadata["question"]), clean_form(doc.text)
        if not self.query_chars[0] <= len(query) <= self.query_chars[1]:
            return False, "query_length"
        if not self.document_chars[0] <= len(document) <= self.document_chars[1]:
            return False, "document_length"
        if matching_form(query) == matching_form(document):
            return False, "query_equals_document"
        doc.metadata["question"], doc.text = query, document
        return True


class LocalFT176LID(FT176LID):
    """FT176LID on a local model file: the stock one downloads lid.176.bin at first use."""

    _model: Any  # set by FastTextLID.__init__, loaded at first use

    def __init__(self, languages: list[str], model_file: str) -> None:
        super().__init__(languages)
        self.model_file = model_file

    @property
    def model(self) -> Any:
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(self.model_file)
        return self._model


class LocalLanguageFilter(LanguageFilter):
    """datatrove's LanguageFilter (ft176 backend) with its model read from ``model_file``."""

    def __init__(self, model_file: str, languages: list[str], language_threshold: float) -> None:
        super().__init__(languages=languages, language_threshold=language_threshold)
        self.model = LocalFT176LID(languages, model_file)


def kept_after(stats: Any, steps: dict[str, int]) -> dict[str, int]:
    """Documents passed on by the named steps (index in the executor's pipeline) in a run's merged stats."""
    # a reader counts what it read as "documents", every other step as "forwarded"
    return {name: int(stats.stats[index].stats["documents" if index == 0 else "forwarded"].total) for name, index in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="folder of part-*.jsonl.gz")
    parser.add_argument("--work", required=True, help="emptied, then every stage's files and the output go here")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--model", required=True, help="fastText model file")
    parser.add_argument("--languages", nargs="+", required=True)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--query-chars", type=int, nargs=2, required=True, metavar=("MIN", "MAX"))
    parser.add_argument("--document-chars", type=int, nargs=2, required=True, metavar=("MIN", "MAX"))
    parser.add_argument("--ngram", type=int, required=True)
    parser.add_argument("--bands", type=int, required=True)
    parser.add_argument("--rows", type=int, required=True)
    args = parser.parse_args()

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)  # executors skip tasks a previous run completed
    exact = ExactDedupConfig(content_getter=pair_key)
    minhash = MinhashConfig(n_grams=args.ngram, num_buckets=args.bands, hashes_per_bucket=args.rows)
    seconds: dict[str, float] = {}
    kept: dict[str, int] = {}

    def run(name: str, pipeline: list, tasks: int, steps: dict[str, int] | None = None) -> None:
        started = time.time()
        stats = LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(args.workers, tasks), logging_dir=str(work / "logs" / name)).run()
        seconds[name] = round(time.time() - started, 2)
        kept.update(kept_after(stats, steps or {}))

    run("filter", [
        JsonlReader(args.corpus, glob_pattern="*.jsonl.gz", adapter=pair_adapter),
        PairClean(tuple(args.query_chars), tuple(args.document_chars)),
        LocalLanguageFilter(args.model, args.languages, args.threshold),
        JsonlWriter(str(work / "filtered")),
        ExactDedupSignature(str(work / "exact_sigs"), exact),
    ], args.workers, {"read": 0, "clean": 1, "language": 2})
    run("exact_find", [ExactFindDedups(str(work / "exact_sigs"), str(work / "exact_dups"), exact)], 1)
    run("exact_filter", [
        JsonlReader(str(work / "filtered")),
        ExactDedupFilter(str(work / "exact_dups"), exact),
        JsonlWriter(str(work / "exact_deduped")),
        MinhashDedupSignature(str(work / "minhash_sigs"), minhash),
    ], args.workers, {"exact_dedup": 1})
    run("minhash_buckets", [MinhashDedupBuckets(str(work / "minhash_sigs"), str(work / "minhash_buckets"), config=minhash)], args.bands)
    run("minhash_cluster", [MinhashDedupCluster(str(work / "minhash_buckets"), str(work / "remove_ids"), config=minhash)], 1)
    run("minhash_filter", [
        JsonlReader(str(work / "exact_deduped")),
        MinhashDedupFilter(str(work / "remove_ids")),
        JsonlWriter(str(work / "output")),
    ], args.workers, {"near_dedup": 1})
    print(json.dumps({"datatrove": version("datatrove"), "kept": kept, "seconds": seconds}))


if __name__ == "__main__":
    main()
