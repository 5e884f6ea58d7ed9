"""``pairmill mine``: hard negatives for built pair datasets -> triplet (or labeled-pair) datasets.

Per dataset, read top to bottom:
1. records: the built dataset's shards (``shards`` reader: checksums verified, ids re-keyed to the
   mined dataset's name); rows sharing a normalised query are one query whose positives are all
   their documents;
2. corpus: the dataset's own documents (or another built dataset's), one entry per normalised text,
   split into ``partitions`` by key, each partition embedded once;
3. search: query batches are embedded once, sent to every partition, and each (partition, query
   batch) yields a partial top-k; partial lists are merged per query, so no worker ever holds the
   whole corpus;
4. selection: mining/negatives.py's window and false-negative guards on the merged lists;
5. the chosen negatives' texts are joined back by key, rows assembled and written as shards.
"""
from __future__ import annotations

import hashlib
import math
import time
from typing import Any, Iterable, Iterator

import apache_beam as beam
import numpy as np
import torch
from apache_beam.io.filesystems import FileSystems

from mining.negatives import MINE_STAGE, NO_KEY, TOO_FEW, CandidateBatch, pad_keys, search_depth, select_negatives, text_keys
from embedding.search import merge_topk, topk_search
from embedding.models import get_teacher
from pipelines.build import prepare_output, withhold
from pipelines.funnel import Funnel, build_funnel, counter_values
from pipelines.options import make_pipeline, pipeline_options
from pipelines.shards import WriteDataset, WriteShards, dropped_key, dropped_order, join, side_folder
from pipelines.sources.shards import ShardsSource, list_shards, read_verified_shard
from pipelines.stages import DROPPED, counted_verdict
from schemas.config import ConfigError
from schemas.manifest import MANIFEST, Manifest, objective, pairmill_version
from schemas.recipe import MiningConfig, Recipe, SourceSpec
from schemas.record import PairRecord


def text_key(text: str) -> int:
    return int(text_keys([text])[0])


def bucket(key: int, buckets: int) -> int:
    return int(hashlib.blake2b(str(key).encode(), digest_size=8).hexdigest(), 16) % buckets


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
    """A batch of queries -> their embeddings and positives (keys, the lowest positive score)."""

    def __init__(self, config: MiningConfig) -> None:
        self.config = config
        self.funnel = Funnel()

    def setup(self) -> None:
        self.teacher = get_teacher(self.config.teacher)

    def process(self, element: tuple[int, Iterable[tuple[int, Iterable[PairRecord]]]]) -> Iterator[Any]:
        _, groups = element
        groups = sorted((key, sorted(rows, key=lambda r: r["id"])) for key, rows in groups)
        queries = self.teacher.encode_queries([rows[0]["query"] for _, rows in groups]).float()
        documents = [r["document"] for _, rows in groups for r in rows]
        document_embeddings = self.teacher.encode_documents(documents).float()
        row_scores, start = [], 0
        for group, (_, rows) in enumerate(groups):
            row_scores.append((document_embeddings[start : start + len(rows)] @ queries[group]).cpu().numpy())
            start += len(rows)
        positive_keys = [sorted({text_key(r["document"]) for r in rows}) for _, rows in groups]
        yield {
            "query_keys": np.array([key for key, _ in groups], dtype=np.int64),
            "seed_ids": [rows[0]["id"] for _, rows in groups],
            "embeddings": queries.cpu().numpy(),
            "positive_keys": positive_keys,
            "positive_scores": np.array([scores.min() for scores in row_scores], dtype=np.float32),
            "row_scores": [dict(zip((r["id"] for r in rows), scores.tolist())) for (_, rows), scores in zip(groups, row_scores)],
        }


class SearchPartitionFn(beam.DoFn):
    """Every query batch against one corpus partition -> a partial top-k per query (corpus keys as indices)."""

    def __init__(self, config: MiningConfig) -> None:
        self.config = config

    def process(self, element: tuple[int, dict[str, list[Any]]]) -> Iterator[tuple[int, Any]]:
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

    def process(self, batch: list[dict[str, Any]], corpus_keys: list[int]) -> Iterator[tuple[int, Any]]:
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
        for query, negatives in zip(batch, mined):
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
        if any(math.isnan(s) for s in negative_scores):  # padded documents: scored here, the only place with their text
            query = self.teacher.encode_queries([rows[0]["query"]]).float()[0]  # type: ignore[union-attr]
            padded = self.teacher.encode_documents(negatives).float() @ query  # type: ignore[union-attr]
            negative_scores = [s if not math.isnan(s) else float(p) for s, p in zip(negative_scores, padded.tolist())]
        for record in rows:
            self.funnel.count(self.dataset, MINE_STAGE, "in")
            self.funnel.count(self.dataset, MINE_STAGE, f"info:{outcome}")
            if outcome == TOO_FEW:
                yield counted_verdict(self.funnel, self.dataset, MINE_STAGE, record, "too_few_negatives")
                continue
            self.funnel.count(self.dataset, MINE_STAGE, "kept")
            meta = {**record["meta"], "positive_score": row_scores[record["id"]], "negative_scores": [float(s) for s in negative_scores]}
            mined = {**record, "negatives": negatives, "meta": meta}
            if self.config.format == "labeled-pair":
                self.funnel.count(self.dataset, MINE_STAGE, "info:added_rows", len(negatives))
                yield from labeled_pairs(mined)
            else:
                yield mined


def labeled_pairs(record: PairRecord) -> Iterator[PairRecord]:
    """(query, document, label) rows for rerankers: the positive with label 1, each negative with 0."""
    meta = record["meta"]
    yield {**record, "id": f"{record['id']}/pos", "negatives": [], "meta": {**meta, "label": 1, "negative_scores": []}}
    for i, (text, score) in enumerate(zip(record["negatives"], meta["negative_scores"])):
        yield {**record, "id": f"{record['id']}/neg{i}", "document": text, "negatives": [],
               "meta": {**meta, "label": 0, "negative_scores": [score]}}


def corpus_manifest(recipe: Recipe, dataset: str, config: MiningConfig) -> str:
    if config.corpus is None:
        return join(join(recipe.output, dataset), MANIFEST)
    if config.corpus in recipe.datasets:
        return join(join(recipe.output, config.corpus), MANIFEST)
    return join(config.corpus, MANIFEST)


def add_mined_dataset(pipeline: beam.Pipeline, recipe: Recipe, dataset: str, config: MiningConfig, input_manifest: Manifest) -> None:
    name = dataset + config.output_suffix
    label = f"{name}:"
    manifest_path = join(join(recipe.output, dataset), MANIFEST)
    records = ShardsSource(SourceSpec(dataset=name, kind="shards", paths=[manifest_path]), [manifest_path]).read(pipeline).records

    corpus_path = corpus_manifest(recipe, dataset, config)
    corpus = (
        pipeline
        | f"{label} corpus manifest" >> beam.Create([corpus_path])
        | f"{label} corpus shards" >> beam.FlatMap(list_shards)
        | f"{label} spread corpus" >> beam.Reshuffle()
        | f"{label} corpus documents" >> beam.FlatMap(lambda element: (r["document"] for r in read_verified_shard(element[1], element[2])))
        | f"{label} key documents" >> beam.Map(lambda text: (text_key(text), text))
        | f"{label} one per text" >> beam.CombinePerKey(min)
    )
    partitions = config.partitions
    embedded = (
        corpus
        | f"{label} partition corpus" >> beam.Map(lambda kv: (bucket(kv[0], partitions), kv))
        | f"{label} group partitions" >> beam.GroupByKey()
        | f"{label} embed corpus" >> beam.ParDo(EmbedPartitionFn(config))
    )
    groups = (
        records
        | f"{label} key queries" >> beam.Map(lambda r: (text_key(r["query"]), r))
        | f"{label} group queries" >> beam.GroupByKey()
    )
    group_count = groups | f"{label} count queries" >> beam.combiners.Count.Globally()
    query_batch = config.query_batch
    batches = (
        groups
        | f"{label} batch queries" >> beam.Map(lambda g, n: (bucket(g[0], max(1, math.ceil(n / query_batch))), g), n=beam.pvalue.AsSingleton(group_count))
        | f"{label} group batches" >> beam.GroupByKey()
        | f"{label} embed queries" >> beam.ParDo(EmbedQueriesFn(config))
    )
    partials = (
        {"corpus": embedded, "queries": batches | f"{label} to every partition" >> beam.FlatMap(lambda b: ((p, b) for p in range(partitions)))}
        | f"{label} join partitions" >> beam.CoGroupByKey()
        | f"{label} search" >> beam.ParDo(SearchPartitionFn(config))
    )
    corpus_keys = corpus | f"{label} corpus keys" >> beam.Keys()
    selection = (
        partials
        | f"{label} group partials" >> beam.GroupByKey()
        | f"{label} merge partials" >> beam.Map(merge_partials)
        | f"{label} batch selection" >> beam.BatchElements(min_batch_size=1, max_batch_size=config.query_batch)
        | f"{label} select" >> beam.ParDo(SelectNegativesFn(config), corpus_keys=beam.pvalue.AsList(corpus_keys))
    )
    texts = (
        {"wanted": selection | f"{label} wanted texts" >> beam.FlatMap(lambda s: ((k, s[0]) for k in s[1][0])), "corpus": corpus}
        | f"{label} join texts" >> beam.CoGroupByKey()
        | f"{label} texts to queries" >> beam.FlatMap(lambda kv: ((q, (kv[0], kv[1]["corpus"][0])) for q in kv[1]["wanted"]))
    )
    row_scores = batches | f"{label} row scores" >> beam.FlatMap(lambda b: zip(b["query_keys"].tolist(), b["row_scores"]))
    assembled = (
        {"rows": groups, "row_scores": row_scores, "selection": selection, "texts": texts}
        | f"{label} join rows" >> beam.CoGroupByKey()
        | f"{label} assemble" >> beam.ParDo(AssembleRowsFn(name, config)).with_outputs(DROPPED, main="rows")
    )
    shards = recipe.shards
    kind = "labeled-pair" if config.format == "labeled-pair" else "triplet"
    assembled.rows | f"{label} write" >> WriteDataset(
        name, join(recipe.output, name), shards.records_per_shard, shards.zstd_level, shards.parquet,
        {"objective": objective(kind), "prefixes": input_manifest.prefixes, "recipe_hash": mined_fingerprint(recipe, dataset),
         "pairmill_version": pairmill_version()},
    )
    assembled[DROPPED] | f"{label} write dropped" >> WriteShards(
        side_folder(recipe.output, "dropped", name), "dropped", shards.records_per_shard, shards.zstd_level,
        key=dropped_key, sort_key=dropped_order,
    )


def mined_fingerprint(recipe: Recipe, dataset: str) -> str:
    content = repr((recipe.dataset_fingerprint(dataset), recipe.raw.get("mining")))
    return hashlib.sha256(content.encode()).hexdigest()


def run_mine(recipe: Recipe, beam_args: list[str], overwrite: bool = False) -> dict[str, Any]:
    """Mine every dataset the recipe's ``mining`` block names; return the funnel of the mined datasets."""
    config = recipe.mining
    if config is None:
        raise ConfigError(f"{recipe.path}: no mining block; add `mining: {{}}` to mine hard negatives")
    datasets = config.datasets or recipe.datasets
    manifests: dict[str, Manifest] = {}
    for dataset in datasets:
        path = join(join(recipe.output, dataset), MANIFEST)
        if not FileSystems.exists(path):
            raise ConfigError(f"{path}: no built dataset {dataset!r}; run `pairmill build {recipe.path}` first")
        with FileSystems.open(path) as f:
            manifests[dataset] = Manifest.from_json(f.read().decode(), path)
        corpus = corpus_manifest(recipe, dataset, config)
        if not FileSystems.exists(corpus):
            raise ConfigError(f"{recipe.path}: mining.corpus: {corpus} not found (a dataset of this recipe or a built dataset folder)")
    pipeline_options(beam_args)  # unknown flags stop here, before the output folder is touched
    names = {dataset + config.output_suffix: dataset for dataset in datasets}
    to_build = prepare_output(recipe, overwrite, datasets=list(names), fingerprint=lambda name: mined_fingerprint(recipe, names[name]))
    started = time.time()
    funnel: dict[str, Any] = {}
    if to_build:
        pipeline = make_pipeline(beam_args)
        for name in to_build:
            add_mined_dataset(pipeline, recipe, names[name], config, manifests[names[name]])
        result = pipeline.run()
        result.wait_until_finish()
        funnel = build_funnel(counter_values(result), to_build)
        for name, entry in funnel.items():
            if not entry["balanced"]:
                withhold(join(recipe.output, name))
    return {"command": "mine", "recipe": recipe.path, "output": recipe.output, "seconds": round(time.time() - started, 2),
            "datasets": funnel, "mined": list(names), "balanced": all(e["balanced"] for e in funnel.values())}
