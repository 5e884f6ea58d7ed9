"""The recipe: one YAML file that says what to build. Its top-level shape is fixed by the design; every
block inside is a dataclass here, so this file is the reference for every key a recipe may hold.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from schemas.config import ConfigError, fraction, non_negative, parse_block, parse_yaml, positive, setting, to_plain
from schemas.sources import SOURCE_OPTIONS

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Decontamination keeps a bit per evaluation set in a 64-bit mask (filters/decontaminate.py).
MAX_EVALUATION_SETS = 64


@dataclass
class Prefixes:
    """Instruction prefixes the trainer puts before each side (Nomic's ``search_query: `` style)."""

    query: str = setting("", help="prefix for the query side, e.g. 'search_query: '")
    document: str = setting("", help="prefix for the document side, e.g. 'search_document: '")


@dataclass
class CleanConfig:
    """Normalises the text (Unicode form, HTML entities) and drops pairs that are too short, too long or identical."""

    normalization: Literal["NFC", "NFKC", "none"] = setting("NFKC", help="Unicode normalisation form")
    unescape_html: bool = setting(True, help="turn HTML entities (&amp; &#39;) into characters")
    min_query_chars: int = setting(2, check=non_negative, help="drop pairs whose query is shorter (after cleaning)")
    min_document_chars: int = setting(2, check=non_negative, help="drop pairs whose document is shorter")
    max_query_chars: int = setting(4096, check=positive, help="queries longer than this are dropped or truncated")
    max_document_chars: int = setting(65536, check=positive, help="documents longer than this are dropped or truncated")
    too_long: Literal["drop", "truncate"] = setting("drop", help="what happens to a side over its maximum")
    drop_identical: bool = setting(True, help="drop pairs whose query equals the document after normalisation")


@dataclass
class LanguageConfig:
    """Keeps the pairs whose text fastText finds in one of the kept languages."""

    model: str | None = setting(None, help="fastText model file (lid.176.bin, GlotLID); default: lid.176.ftz shipped in pairmill (filters/data/)")
    fields: Literal["query", "document", "both", "pair"] = setting(
        "document",
        help="which side(s) must be in a kept language (short queries are where lid.176 is least sure); pair: query and document judged as one text",
    )
    languages: list[str] = setting(["en"], help="language codes to keep")
    threshold: float = setting(0.65, check=fraction, help="minimum fastText probability of a kept language")
    batch_size: int = setting(1024, check=positive, help="texts per batched prediction")


@dataclass
class MinHashConfig:
    """MinHash signatures and LSH bands; candidates within the threshold form clusters, one record of each survives."""

    field: Literal["document", "query", "pair"] = setting("document", help="text the shingles are taken from")
    ngram: int = setting(5, check=positive, help="words per shingle")
    num_perm: int = setting(128, check=positive, help="MinHash permutations")
    seed: int = setting(1, help="MinHash seed (datasketch's default is 1)")
    scheme: Literal["affine32", "legacy"] = setting("affine32", help="datasketch's permutation scheme: affine32 (its default since 2.0) or legacy (before 2.0)")
    shingle_hash: Literal["sha1", "murmur3"] = setting(
        "sha1", help="shingle hash: sha1 (datasketch's default) or murmur3 (datasketch with hashfunc=mmh3.hash(b, signed=False); twice as fast)"
    )
    threshold: float = setting(0.8, check=fraction, help="Jaccard similarity at which two records are duplicates")
    bands: int | None = setting(None, check=positive, help="LSH bands; with rows, overrides the optimum derived from the threshold")
    rows: int | None = setting(None, check=positive, help="LSH rows per band")
    verify: bool = setting(False, help="check candidate pairs' exact Jaccard to remove LSH false positives (the default bands then favour recall)")
    keep: Literal["smallest_id", "highest_score"] = setting("smallest_id", help="which record of a cluster survives")
    batch_size: int = setting(1024, check=positive, help="records per batched signature computation")


@dataclass
class DedupConfig:
    """Exact and near-duplicate removal."""

    exact: Literal["pair", "query", "document", "none"] = setting("pair", help="exact duplicates on normalised text of this field")
    near: MinHashConfig | None = setting(None, help="MinHash near-duplicate removal; null is off")


@dataclass
class EvaluationSource:
    """One evaluation set whose texts training pairs must not contain."""

    path: str = setting(help="a BEIR folder (corpus.jsonl and queries.jsonl, titles included), a JSON lines file or a text file, on any Beam filesystem")
    format: Literal["beir", "jsonl", "lines"] = setting("beir", help="beir: a BEIR folder; jsonl: one JSON object a line; lines: one text a line")
    field: str = setting("text", help="the JSON lines field that holds the text")
    name: str | None = setting(None, help="the set's name in drop reasons and the datasheet; default: the last part of the path, without extension")

    @property
    def set_name(self) -> str:
        if self.name is not None:
            return self.name
        last = self.path.rstrip("/").rsplit("/", 1)[-1]
        return last.rsplit(".", 1)[0] if self.format != "beir" and "." in last else last


@dataclass
class DecontaminateConfig:
    """Drops pairs that overlap an evaluation text: equal in the matching form, sharing an n-gram, or a near copy."""

    against: list[EvaluationSource] = setting(help="the evaluation sets")
    ngram: int = setting(13, check=positive, help="words an overlap must share; texts shorter than this compare whole")
    containment: float | None = setting(
        0.3, check=fraction,
        help="also drop a text when at least this share of its 5-word shingles (and 3 or more) occur in one evaluation text: "
        "a near copy, trimmed or with a few words changed; null: the n-gram rule alone",
    )
    sides: Literal["both", "query", "document"] = setting("both", help="which side of a pair is checked")
    queries_only: list[str] = setting(
        [], help="evaluation sets (by name) that only training queries are checked against, and only with their queries (a BEIR folder's "
        "queries.jsonl): for sets whose corpus the training documents share by design, such as MS MARCO's",
    )

    @property
    def names(self) -> list[str]:
        return [source.set_name for source in self.against]

    def check_block(self) -> str | None:
        names = self.names
        if not names:
            return "against: name at least one evaluation set"
        if len(names) > MAX_EVALUATION_SETS:
            return f"against: at most {MAX_EVALUATION_SETS} evaluation sets, got {len(names)}"
        for i, name in enumerate(names):
            if not DATASET_NAME.match(name):
                return f"against[{i}]: the set's name must be letters, digits, '_', '.' or '-', got {name!r} (set `name`)"
            if name in names[:i]:
                return f"against[{i}]: the name {name!r} is used by an earlier set (set `name`)"
        unknown = [name for name in self.queries_only if name not in names]
        return f"queries_only: {', '.join(map(repr, unknown))} is not the name of a set in `against`" if unknown else None


@dataclass
class TeacherConfig:
    """The embedding model; ``filters.consistency`` and ``mining`` each have their own ``teacher`` block."""

    model: str = setting(
        "default",
        help="sentence-transformers model name or path; 'default' is the offline wordllama StaticEmbedding, "
        "'minilm' the offline all-MiniLM-L6-v2 (both installed with pairmill)",
    )
    device: Literal["auto", "cpu", "cuda"] = setting("auto", help="auto picks CUDA when present")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = setting("auto", help="auto is bf16 on GPUs that have it, fp16 on others, fp32 on CPU")
    batch_size: int = setting(256, check=positive, help="texts per encode batch")
    max_seq_length: int | None = setting(None, help="truncate texts to this many tokens")
    query_prefix: str = setting("", help="prefix for queries when embedding")
    document_prefix: str = setting("", help="prefix for documents when embedding")


@dataclass
class ConsistencyTeacherConfig(TeacherConfig):
    """The consistency filter's teacher: the keys of `teacher`, with all-MiniLM-L6-v2 as the default model."""

    model: str = setting(
        "minilm",
        help="as in `teacher`; 'minilm' by default here, since it is the teacher that made curation pay in "
        "benchmarks/curation_value.py ('default', the static model, costs far less per pair on a CPU)",
    )


@dataclass
class ConsistencyConfig:
    """Keeps a pair when the teacher ranks its own document among the top k of a chunk's documents."""

    teacher: ConsistencyTeacherConfig = dataclasses.field(default_factory=ConsistencyTeacherConfig)
    k: int = setting(2, check=positive, help="keep a pair if its own document ranks within the top k")
    margin: float | None = setting(
        None, check=non_negative,
        help="also keep a pair whose own document scores at most this much (cosine) below the best other document of its chunk; null: the rank rule alone",
    )
    chunk_size: int = setting(1_000_000, check=positive, help="pairs searched against each other")
    search_batch: int = setting(4096, check=positive, help="queries per matrix product")


@dataclass
class FiltersConfig:
    """The recipe's `filters`; a source's own `filters` merge over them key by key (nested blocks too), null turns one off there."""

    clean: CleanConfig | None = None
    language: LanguageConfig | None = None
    dedup: DedupConfig | None = None
    decontaminate: DecontaminateConfig | None = None
    consistency: ConsistencyConfig | None = None


@dataclass
class SourceSpec:
    """One entry of ``sources``: one output dataset read by one reader kind."""

    dataset: str
    kind: str
    paths: list[str]
    prefixes: Prefixes | None = None
    objective: Literal["paired", "triplet"] = "paired"
    expected_records: int | None = None
    url: str | None = None
    filters: FiltersConfig = dataclasses.field(default_factory=FiltersConfig)  # the recipe's, with this source's overrides
    options: Any = None  # the kind's own options dataclass from schemas.sources


@dataclass
class MiningConfig:
    """Hard negatives for each built dataset, chosen among the teacher's nearest documents."""

    teacher: TeacherConfig = dataclasses.field(default_factory=TeacherConfig)
    datasets: list[str] | None = setting(None, help="built datasets to mine (default: every source)")
    corpus: str | None = setting(None, help="documents to draw negatives from: a dataset name or a folder; default the dataset's own")
    output_suffix: str = setting("_mined", help="mined dataset name = dataset + suffix")
    format: Literal["triplet", "labeled-pair"] = setting("triplet", help="triplet rows, or (query, document, label) rows for rerankers")
    range_min: int = setting(0, check=non_negative, help="first rank of the candidate window")
    range_max: int = setting(100, check=positive, help="last rank of the candidate window")
    relative_margin: float | None = setting(0.05, help="negative score must be below (1 - m) * positive score")
    absolute_margin: float | None = setting(None, help="negative score must be below positive score - m")
    max_score: float | None = setting(None, help="skip candidates scoring above this")
    min_score: float | None = setting(None, help="skip candidates scoring below this")
    num_negatives: int = setting(7, check=positive, help="negatives per row")
    sampling: Literal["top", "random"] = setting("top", help="take the best candidates, or a seeded random sample of them")
    seed: int = setting(0, help="seed for random sampling and padding")
    too_few: Literal["drop", "keep", "pad"] = setting("drop", help="rows with fewer negatives: drop, keep with fewer, or pad with random documents")
    partitions: int = setting(1, check=positive, help="corpus partitions searched in parallel; partial top-k lists are merged")
    query_batch: int = setting(4096, check=positive, help="queries per search batch")
    cache_dir: str | None = setting(None, help="cache corpus embeddings here, keyed by teacher and texts")
    index: Literal["exact", "faiss"] = setting("exact", help="exact chunked search, or an approximate FAISS index")


@dataclass
class ShardsConfig:
    """How each dataset's records are written."""

    records_per_shard: int = setting(100_000, check=positive, help="target records per shard file")
    zstd_level: int = setting(10, check=lambda v: None if 1 <= v <= 22 else "must be between 1 and 22", help="zstd compression level")
    parquet: bool = setting(False, help="also write a zstd Parquet copy of each shard")
    write_dropped: Literal["none", "sample", "all"] = setting("sample", help="write dropped records to OUT/_dropped: none, a sample per reason, or all")
    dropped_sample_size: int = setting(20, check=positive, help="records kept per (dataset, stage, reason) when write_dropped is sample")


@dataclass
class Recipe:
    path: str
    output: str
    sources: list[SourceSpec]
    filters: FiltersConfig
    mining: MiningConfig | None
    shards: ShardsConfig
    raw: dict[str, Any]

    @property
    def datasets(self) -> list[str]:
        return [s.dataset for s in self.sources]

    def source(self, dataset: str) -> SourceSpec:
        return next(s for s in self.sources if s.dataset == dataset)

    def fingerprint(self) -> str:
        """sha256 of the recipe's content (not its path or output)."""
        content = {k: v for k, v in self.raw.items() if k != "output"}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()

    def dataset_fingerprint(self, dataset: str) -> str:
        """sha256 of what decides one dataset's content (its source entry, filters, shards): its manifest's recipe_hash."""
        entry = next(s for s in self.raw["sources"] if s.get("dataset") == dataset)
        content = {"source": entry, "filters": self.raw.get("filters"), "shards": self.raw.get("shards")}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


TOP_LEVEL_KEYS = ("output", "sources", "filters", "mining", "shards")
SOURCE_KEYS = {f.name for f in dataclasses.fields(SourceSpec)} - {"options"}


def with_overrides(base: Any, overrides: Any) -> Any:
    """``base`` with ``overrides`` merged in key by key, nested mappings too; an override of null replaces (turns a block off)."""
    if not isinstance(base, dict) or not isinstance(overrides, dict):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        merged[key] = with_overrides(base.get(key), value)
    return merged


def parse_source(raw: Any, where: str, recipe_filters: Any = None) -> SourceSpec:
    """One source entry; its ``filters`` are the recipe's (``recipe_filters``, as written) with the entry's own merged in."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with dataset, kind and paths, got {raw!r}")
    kind = raw.get("kind")
    if kind not in SOURCE_OPTIONS:
        raise ConfigError(f"{where}.kind: unknown kind {kind!r} (known kinds: {', '.join(sorted(SOURCE_OPTIONS))})")
    common = {k: v for k, v in raw.items() if k in SOURCE_KEYS and k != "filters"}
    if isinstance(common.get("paths"), str):
        common["paths"] = [common["paths"]]
    spec = parse_block(SourceSpec, common, where)
    if not DATASET_NAME.match(spec.dataset):
        raise ConfigError(f"{where}.dataset: must be letters, digits, '_', '.' or '-', got {spec.dataset!r}")
    if not spec.paths:
        raise ConfigError(f"{where}.paths: must name at least one file or glob")
    kind_options = {k: v for k, v in raw.items() if k not in SOURCE_KEYS}
    spec.options = parse_block(SOURCE_OPTIONS[kind], kind_options, where)
    overrides = raw.get("filters", {})
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}.filters: expected a mapping of filter blocks to override, got {overrides!r}")
    spec.filters = parse_block(FiltersConfig, with_overrides(recipe_filters or {}, overrides), f"{where}.filters")
    return spec


def parse_recipe(raw: Any, path: str) -> Recipe:
    """Validate a recipe given as parsed YAML; errors name ``path`` and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping with the keys {', '.join(TOP_LEVEL_KEYS)}")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: {', '.join(TOP_LEVEL_KEYS)})")
    if not isinstance(raw.get("output"), str) or not raw["output"]:
        raise ConfigError(f"{path}: output: expected a folder path, got {raw.get('output')!r}")
    raw_sources = raw.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(f"{path}: sources: expected a list of at least one source, got {raw_sources!r}")
    filters = parse_block(FiltersConfig, raw.get("filters"), f"{path}: filters")  # first, so its errors name `filters`
    sources = [parse_source(s, f"{path}: sources[{i}]", raw.get("filters")) for i, s in enumerate(raw_sources)]
    seen: set[str] = set()
    for i, spec in enumerate(sources):
        if spec.dataset in seen:
            raise ConfigError(f"{path}: sources[{i}].dataset: {spec.dataset!r} is used by an earlier source")
        seen.add(spec.dataset)
    mining = None if raw.get("mining") is None else parse_block(MiningConfig, raw["mining"], f"{path}: mining")
    shards = parse_block(ShardsConfig, raw.get("shards"), f"{path}: shards")
    return Recipe(path=path, output=raw["output"], sources=sources, filters=filters, mining=mining, shards=shards, raw=raw)


def recipe_from_yaml(text: str, path: str, output: str | None = None) -> Recipe:
    """Validate a YAML recipe read from ``path``; ``output`` (the ``--output`` flag) overrides its output
    folder. ``storage.configs.load_recipe`` reads the file."""
    recipe = parse_recipe(parse_yaml(text, path, "recipe"), path)
    if output:
        recipe.output = output
    return recipe


def _source_as_dict(spec: SourceSpec, recipe_filters: FiltersConfig) -> dict[str, Any]:
    """A source entry as plain values; its filters only where its overrides make them differ from the recipe's."""
    plain = {**to_plain(dataclasses.replace(spec, options=None)), "options": to_plain(spec.options)}
    if spec.filters == recipe_filters:
        del plain["filters"]
    return plain


def recipe_as_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe with every default filled in, as plain values (for reports and --dry-run)."""
    return {
        "output": recipe.output,
        "sources": [_source_as_dict(s, recipe.filters) for s in recipe.sources],
        "filters": to_plain(recipe.filters),
        "mining": to_plain(recipe.mining),
        "shards": to_plain(recipe.shards),
    }
