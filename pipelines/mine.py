"""``pairmill mine``: hard negatives for built pair datasets -> triplet (or labeled-pair) datasets.

Per dataset, read top to bottom (``add_mined_dataset``, one named step each):
1. records: the built dataset's shards (``shards`` reader: checksums verified, ids re-keyed to the
   mined dataset's name), grouped by their query's text key (``GroupQueries``): one query whose
   positives are all its rows' documents;
2. corpus: the dataset's own documents (or another built dataset's), one entry per text key
   (``ReadCorpus``), split into ``partitions`` by key, each partition embedded once (``EmbedCorpus``);
3. search: query batches are embedded once with their positives scored (``EmbedQueryBatches``), sent to
   every partition, and each (partition, query batch) yields a partial top-k; partial lists are merged
   per query (``SearchPartitions``), so no worker ever holds the whole corpus;
4. selection: mining/negatives.py's window and false-negative guards on the merged lists (``SelectNegatives``);
5. the chosen negatives' texts are joined back by key (``JoinNegativeTexts``), rows assembled
   (``AssembleRows``) and written as shards.
Grouping, positive scoring, selection and the mined row are mining/negatives.py's functions, the same
that the in-memory miner (``mine_hard_negatives``) calls.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import apache_beam as beam
import numpy as np
import torch

from embedding.models import get_teacher
from embedding.names import check_model
from embedding.search import merge_topk, topk_search
from mining.negatives import (
    MINE_STAGE,
    NO_KEY,
    TOO_FEW,
    TOO_FEW_REASON,
    CandidateBatch,
    embed_group_queries,
    group_queries,
    mined_row,
    pad_keys,
    positive_scores,
    search_depth,
    select_negatives,
)
from pipelines.build import run_datasets
from pipelines.funnel import Funnel
from pipelines.shards import WriteDataset, WriteShards, dropped_key, dropped_order
from pipelines.sources.shards import ShardsSource
from pipelines.stages import DROPPED, counted_verdict
from schemas.config import ConfigError
from schemas.manifest import Manifest, objective, pairmill_version
from schemas.recipe import MiningConfig, Recipe, SourceSpec
from schemas.record import PairRecord
from storage.builds import dataset_folder, existing_manifest, list_shards, manifest_path, read_verified_shard, side_folder
from storage.files import exists
from text.hashing import bucket, text_key

Keyed = tuple[int, Any]


class EmbedPartitionFn(beam.DoFn):
    """One corpus partition -> (partition, (keys sorted, embeddings)); the teacher loads once per worker."""

    def __init__(self, config: MiningConfig) -> None:
        self.config = config

    def setup(self) -> None:
        self.teacher = get_teacher(self.config.teacher)

    def process(self, element: tuple[int, Iterable[tuple[int, str]]]) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
        partition, documents = element
        documents = sorted(documents)
        keys = np.array([key for key, _ in documents], dtype=np.int64)
        embeddings = self.teacher.encode_documents([text for _, text in documents]).float().cpu().numpy()
        yield partition, (keys, embeddings)


class EmbedQueriesFn(beam.DoFn):
    """A batch of query groups -> their embeddings and positives (keys, the lowest positive score, each row's score)."""

    def __init__(self, config: MiningConfig) -> None:
        self.config = config

    def setup(self) -> None:
        self.teacher = get_teacher(self.config.teacher)

    def process(self, element: tuple[int, Iterable[tuple[int, Iterable[PairRecord]]]]) -> Iterator[dict[str, Any]]:
        _, grouped = element
        keyed = sorted(((key, record) for key, rows in grouped for record in rows), key=lambda kv: kv[1]["id"])
        records = [record for _, record in keyed]
        document_keys = np.array([text_key(r["document"]) for r in records], dtype=np.int64)
        groups = group_queries(np.array([key for key, _ in keyed], dtype=np.int64), document_keys, [r["id"] for r in records])
        queries = embed_group_queries(self.teacher, records, groups)
        row_scores, group_scores = positive_scores(queries, self.teacher.encode_documents([r["document"] for r in records]), groups)
        yield {
            "query_keys": groups.query_keys,
            "seed_ids": [records[row]["id"] for row in groups.seed_rows],
            "embeddings": queries.float().cpu().numpy(),
            "positive_keys": groups.positive_keys,
            "positive_scores": group_scores,
            "row_scores": [{records[row]["id"]: float(row_scores[row]) for row in rows} for rows in groups.rows],
        }


class SearchPartitionFn(beam.DoFn):
    """Every query batch against one corpus partition -> a partial top-k per query (corpus keys as indices)."""

    def __init__(self, config: MiningConfig) -> None:
        self.config = config

    def process(self, element: tuple[int, dict[str, list[Any]]]) -> Iterator[Keyed]:
        _, joined = element
        if not joined["corpus"]:
            return
        keys, corpus = joined["corpus"][0]
        for batch in joined["queries"]:
            depth = int(search_depth(self.config, np.array([len(p) for p in batch["positive_keys"]])).max())
            scores, positions = topk_search(batch["embeddings"], corpus, depth, query_batch=self.config.query_batch)
            found_keys = keys[positions.numpy()]
            for row, query_key in enumerate(batch["query_keys"].tolist()):
                info = (batch["seed_ids"][row], batch["positive_keys"][row], float(batch["positive_scores"][row]), depth)
                yield query_key, (scores[row].numpy(), found_keys[row], info)


def merge_partials(element: tuple[int, Iterable[Any]]) -> dict[str, Any]:
    """A query's partial top-k lists (one per partition) -> its candidates, best first, and its positives."""
    query_key, partials = element
    partials = list(partials)
    seed_id, positives, positive_score, depth = partials[0][2]
    scores, keys = merge_topk([(torch.from_numpy(s[None]), torch.from_numpy(k[None])) for s, k, _ in partials], depth)
    return {"query_key": query_key, "seed_id": seed_id, "positives": positives, "positive_score": positive_score,
            "scores": scores[0].numpy(), "keys": keys[0].numpy()}


class SelectNegativesFn(beam.DoFn):
    """Merged candidate lists -> the negatives of each query (mining/negatives.py's policies)."""

    def __init__(self, config: MiningConfig) -> None:
        self.config = config

    def process(self, batch: list[dict[str, Any]], corpus_keys: list[int]) -> Iterator[Keyed]:
        width = max(len(q["keys"]) for q in batch)
        candidates = np.full((len(batch), width), NO_KEY, dtype=np.int64)
        scores = np.full((len(batch), width), -np.inf, dtype=np.float32)
        for row, query in enumerate(batch):
            candidates[row, : len(query["keys"])] = query["keys"]
            scores[row, : len(query["scores"])] = query["scores"]
        # Corpus keys serve as the candidates' indices: the texts are joined back by key afterwards.
        candidates_batch = CandidateBatch(
            indices=candidates,
            scores=scores,
            keys=candidates,
            positive_scores=np.array([q["positive_score"] for q in batch], dtype=np.float32),
            positive_keys=pad_keys([q["positives"] for q in batch]),
            query_keys=np.array([q["query_key"] for q in batch], dtype=np.int64),
            row_ids=[q["seed_id"] for q in batch],
        )
        pad_from = np.array(corpus_keys, dtype=np.int64) if self.config.too_few == "pad" else None
        mined = select_negatives(candidates_batch, self.config, corpus_keys=pad_from)
        for query, negatives in zip(batch, mined, strict=True):
            yield query["query_key"], (negatives.indices, negatives.scores, negatives.outcome)


class AssembleRowsFn(beam.DoFn):
    """Each row of a query gets the query's negatives (texts in rank order) and its scores in meta."""

    def __init__(self, dataset: str, config: MiningConfig) -> None:
        self.dataset = dataset
        self.config = config
        self.funnel = Funnel()

    def setup(self) -> None:
        self.teacher = get_teacher(self.config.teacher) if self.config.too_few == "pad" else None

    def process(self, element: tuple[int, dict[str, list[Any]]]) -> Iterator[Any]:
        _, joined = element
        (rows,) = joined["rows"]
        row_scores: dict[str, float] = {}
        for scores in joined["row_scores"]:
            row_scores.update(scores)
        (chosen_keys, negative_scores, outcome), = joined["selection"]
        texts = dict(joined["texts"])
        negatives = [texts[key] for key in chosen_keys]
        if any(math.isnan(s) for s in negative_scores):
            negative_scores = self._score_padding(rows[0]["query"], negatives, negative_scores)
        for record in rows:
            self.funnel.count(self.dataset, MINE_STAGE, "in")
            self.funnel.count(self.dataset, MINE_STAGE, f"info:{outcome}")
            if outcome == TOO_FEW:
                yield counted_verdict(self.funnel, self.dataset, MINE_STAGE, record, TOO_FEW_REASON)
                continue
            self.funnel.count(self.dataset, MINE_STAGE, "kept")
            mined = mined_row(record, negatives, row_scores[record["id"]], negative_scores)
            if self.config.format == "labeled-pair":
                self.funnel.count(self.dataset, MINE_STAGE, "info:added_rows", len(negatives))
                yield from labeled_pairs(mined)
            else:
                yield mined

    def _score_padding(self, query: str, negatives: list[str], negative_scores: list[float]) -> list[float]:
        """Padded documents' scores (NaN until here, the only place with their text)."""
        assert self.teacher is not None  # too_few="pad" loads it
        query_embedding = self.teacher.encode_queries([query]).float()[0]
        padded = self.teacher.encode_documents(negatives).float() @ query_embedding
        return [s if not math.isnan(s) else float(p) for s, p in zip(negative_scores, padded.tolist(), strict=True)]


def labeled_pairs(record: PairRecord) -> Iterator[PairRecord]:
    """(query, document, label) rows for rerankers: the positive with label 1, each negative with 0."""
    meta = record["meta"]
    yield {**record, "id": f"{record['id']}/pos", "negatives": [], "meta": {**meta, "label": 1, "negative_scores": []}}
    for i, (text, score) in enumerate(zip(record["negatives"], meta["negative_scores"], strict=True)):
        yield {**record, "id": f"{record['id']}/neg{i}", "document": text, "negatives": [],
               "meta": {**meta, "label": 0, "negative_scores": [score]}}


class ReadCorpus(beam.PTransform):
    """A built dataset's documents (by its manifest) -> (text key, text), one text per key (the smallest)."""

    def __init__(self, manifest: str) -> None:
        super().__init__()
        self.manifest = manifest

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pipeline
            | "manifest" >> beam.Create([self.manifest])
            | "shards" >> beam.FlatMap(list_shards)
            | "spread" >> beam.Reshuffle()
            | "documents" >> beam.FlatMap(lambda element: (r["document"] for r in read_verified_shard(element[1], element[2])))
            | "key documents" >> beam.Map(lambda text: (text_key(text), text))
            | "one per text" >> beam.CombinePerKey(min)
        )


class EmbedCorpus(beam.PTransform):
    """(text key, text) -> (partition, (keys, embeddings)): ``partitions`` parts by key, each embedded once."""

    def __init__(self, config: MiningConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, corpus: beam.PCollection) -> beam.PCollection:
        partitions = self.config.partitions
        return (
            corpus
            | "partition" >> beam.Map(lambda kv: (bucket(str(kv[0]), partitions), kv))
            | "group partitions" >> beam.GroupByKey()
            | "embed" >> beam.ParDo(EmbedPartitionFn(self.config))
        )


class GroupQueries(beam.PTransform):
    """Records -> (query text key, rows): one query per key, as ``mining.negatives.group_queries`` groups."""

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return records | "key queries" >> beam.Map(lambda r: (text_key(r["query"]), r)) | "group" >> beam.GroupByKey()


class EmbedQueryBatches(beam.PTransform):
    """Query groups -> batches of about ``query_batch`` queries, embedded, their positives scored."""

    def __init__(self, config: MiningConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, groups: beam.PCollection) -> beam.PCollection:
        count = groups | "count" >> beam.combiners.Count.Globally()
        query_batch = self.config.query_batch
        return (
            groups
            | "batch" >> beam.Map(lambda g, n: (bucket(str(g[0]), max(1, math.ceil(n / query_batch))), g), n=beam.pvalue.AsSingleton(count))
            | "group batches" >> beam.GroupByKey()
            | "embed" >> beam.ParDo(EmbedQueriesFn(self.config))
        )


class SearchPartitions(beam.PTransform):
    """{"corpus": embedded partitions, "queries": query batches} -> each query's candidates merged over partitions."""

    def __init__(self, config: MiningConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        partitions = self.config.partitions
        queries = inputs["queries"] | "to every partition" >> beam.FlatMap(lambda b: ((p, b) for p in range(partitions)))
        return (
            {"corpus": inputs["corpus"], "queries": queries}
            | "join partitions" >> beam.CoGroupByKey()
            | "search" >> beam.ParDo(SearchPartitionFn(self.config))
            | "group partials" >> beam.GroupByKey()
            | "merge partials" >> beam.Map(merge_partials)
        )


class SelectNegatives(beam.PTransform):
    """Merged candidates -> (query key, (chosen corpus keys, scores, outcome)); padding draws from ``corpus``."""

    def __init__(self, config: MiningConfig, corpus: beam.PCollection) -> None:
        super().__init__()
        self.config = config
        self.corpus = corpus

    def expand(self, candidates: beam.PCollection) -> beam.PCollection:
        corpus_keys = self.corpus | "corpus keys" >> beam.Keys()
        return (
            candidates
            | "batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.config.query_batch)
            | "select" >> beam.ParDo(SelectNegativesFn(self.config), corpus_keys=beam.pvalue.AsList(corpus_keys))
        )


class JoinNegativeTexts(beam.PTransform):
    """{"selection": chosen keys per query, "corpus": (key, text)} -> (query key, (corpus key, text)) per negative."""

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        wanted = inputs["selection"] | "wanted" >> beam.FlatMap(lambda s: ((k, s[0]) for k in s[1][0]))
        return (
            {"wanted": wanted, "corpus": inputs["corpus"]}
            | "join" >> beam.CoGroupByKey()
            | "to queries" >> beam.FlatMap(lambda kv: ((q, (kv[0], kv[1]["corpus"][0])) for q in kv[1]["wanted"]))
        )


class AssembleRows(beam.PTransform):
    """{"rows", "row_scores", "selection", "texts"} keyed by query -> mined rows (main) and dropped rows (DROPPED)."""

    def __init__(self, dataset: str, config: MiningConfig) -> None:
        super().__init__()
        self.dataset = dataset
        self.config = config

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.pvalue.DoOutputsTuple:
        return (
            inputs
            | "join rows" >> beam.CoGroupByKey()
            | "assemble" >> beam.ParDo(AssembleRowsFn(self.dataset, self.config)).with_outputs(DROPPED, main="rows")
        )


def corpus_manifest(recipe: Recipe, dataset: str, config: MiningConfig) -> str:
    """The manifest of the documents negatives come from: the dataset's own, another of the recipe's, or a built folder's."""
    if config.corpus is None:
        return manifest_path(dataset_folder(recipe.output, dataset))
    if config.corpus in recipe.datasets:
        return manifest_path(dataset_folder(recipe.output, config.corpus))
    return manifest_path(config.corpus)


def add_mined_dataset(pipeline: beam.Pipeline, recipe: Recipe, dataset: str, config: MiningConfig, input_manifest: Manifest) -> None:
    """The steps that mine ``dataset`` into ``dataset + output_suffix``, added to ``pipeline``."""
    name = dataset + config.output_suffix
    label = f"{name}:"
    manifest = manifest_path(dataset_folder(recipe.output, dataset))
    records = ShardsSource(SourceSpec(dataset=name, kind="shards", paths=[manifest]), [manifest]).read(pipeline).records

    corpus = pipeline | f"{label} corpus" >> ReadCorpus(corpus_manifest(recipe, dataset, config))
    groups = records | f"{label} group queries" >> GroupQueries()
    batches = groups | f"{label} embed queries" >> EmbedQueryBatches(config)
    embedded = corpus | f"{label} embed corpus" >> EmbedCorpus(config)
    candidates = {"corpus": embedded, "queries": batches} | f"{label} search" >> SearchPartitions(config)
    selection = candidates | f"{label} select" >> SelectNegatives(config, corpus)
    texts = {"selection": selection, "corpus": corpus} | f"{label} negative texts" >> JoinNegativeTexts()
    row_scores = batches | f"{label} row scores" >> beam.FlatMap(lambda b: zip(b["query_keys"].tolist(), b["row_scores"], strict=True))
    assembled = {"rows": groups, "row_scores": row_scores, "selection": selection, "texts": texts} | f"{label} assemble" >> AssembleRows(name, config)
    write_mined(assembled, recipe, dataset, name, config, input_manifest, label)


def write_mined(assembled: beam.pvalue.DoOutputsTuple, recipe: Recipe, dataset: str, name: str, config: MiningConfig,
                input_manifest: Manifest, label: str) -> None:
    """The mined rows as the dataset ``name`` (manifest last), the dropped rows in the output's dropped folder."""
    shards = recipe.shards
    kind: Literal["labeled-pair", "triplet"] = "labeled-pair" if config.format == "labeled-pair" else "triplet"
    assembled.rows | f"{label} write" >> WriteDataset(
        name, dataset_folder(recipe.output, name), shards.records_per_shard, shards.zstd_level, shards.parquet,
        {"objective": objective(kind), "prefixes": input_manifest.prefixes, "recipe_hash": mined_fingerprint(recipe, dataset),
         "pairmill_version": pairmill_version()},
    )
    assembled[DROPPED] | f"{label} write dropped" >> WriteShards(
        side_folder(recipe.output, "dropped", name), "dropped", shards.records_per_shard, shards.zstd_level,
        key=dropped_key, sort_key=dropped_order, dataset=name,
    )


def mined_fingerprint(recipe: Recipe, dataset: str) -> str:
    content = repr((recipe.dataset_fingerprint(dataset), recipe.raw.get("mining")))
    return hashlib.sha256(content.encode()).hexdigest()


def run_mine(recipe: Recipe, beam_args: list[str], overwrite: bool = False, one_at_a_time: bool = False) -> dict[str, Any]:
    """Mine every dataset the recipe's ``mining`` block names; return the funnel of the mined datasets."""
    config = recipe.mining
    if config is None:
        raise ConfigError(f"{recipe.path}: no mining block; add `mining: {{}}` to mine hard negatives")
    check_model(config.teacher.model, f"{recipe.path}: mining.teacher.model")  # a missing extra or model stops here, not in every worker
    datasets = config.datasets or recipe.datasets
    manifests: dict[str, Manifest] = {}
    for dataset in datasets:
        folder = dataset_folder(recipe.output, dataset)
        manifest = existing_manifest(folder)
        if manifest is None:
            raise ConfigError(f"{manifest_path(folder)}: no built dataset {dataset!r}; run `pairmill build {recipe.path}` first")
        manifests[dataset] = manifest
        corpus = corpus_manifest(recipe, dataset, config)
        if not exists(corpus):
            raise ConfigError(f"{recipe.path}: mining.corpus: {corpus} not found (a dataset of this recipe or a built dataset folder)")
    names = {dataset + config.output_suffix: dataset for dataset in datasets}
    funnel, seconds, metrics = run_datasets(
        recipe, beam_args, overwrite, list(names), lambda name: mined_fingerprint(recipe, names[name]),
        lambda pipeline, name: add_mined_dataset(pipeline, recipe, names[name], config, manifests[names[name]]),
        one_at_a_time,
    )
    return {"command": "mine", "recipe": recipe.path, "output": recipe.output, "seconds": seconds, "metrics": metrics,
            "datasets": funnel, "mined": list(names), "balanced": all(e["balanced"] for e in funnel.values())}
