"""Hard-negative selection from a teacher's top-k search, with the false-negative guards of NV-Retriever.

Texts are compared by key: ``text.hashing.text_key``, a 63-bit hash of the text's matching form (the form
exact dedup compares: case, punctuation and whitespace folded), so a corpus larger than memory needs only 8
bytes per document to check "is this the positive again?".

Rows whose queries share a key are one query (``group_queries``): searched once, with every row's document
as its positives, the lowest positive score as the margins' reference (``positive_scores``), and the same
negatives for every row. The in-memory miner here and the Beam job (pipelines/mine.py) share these steps.

Per query, candidates are the search results best first. Policies (``MiningConfig``):
- every candidate whose key is one of the query's positives (all rows of the query's group are its
  positives) is removed before ranking, so positives never take a slot of the window;
- the window is ranks ``range_min`` .. ``range_max - 1`` of what remains;
- inside the window a candidate is skipped if its text equals the query's, repeats an earlier candidate's,
  scores above ``(positive - |positive| * relative_margin)``, above ``positive - absolute_margin``, above
  ``max_score`` or below ``min_score`` (the positive score is the lowest of the query's positives: the
  safe side, as in sentence-transformers);
- ``sampling`` takes the first ``num_negatives`` survivors, or a seeded random sample of them (seeded by
  the recipe seed and the row's id, so reruns pick the same);
- with fewer survivors, ``too_few`` drops the row, keeps it with fewer, or pads it with seeded random
  corpus documents that are neither positives, the query, nor any retrieved candidate.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from embedding.models import Teacher
from embedding.search import CorpusIndex, build_index, cached_document_embeddings
from schemas.recipe import MiningConfig
from schemas.record import DroppedRecord, PairRecord, RecordMeta, dropped
from text.hashing import stable_hash, text_key

NO_KEY = -1
PAD_DRAW_ROUNDS = 8
MINE_STAGE = "mine"
TOO_FEW_REASON = "too_few_negatives"

FULL = "full"
FEWER = "fewer"
PADDED = "padded"
TOO_FEW = "too_few"
"""Outcomes of a row: enough negatives, kept with fewer, padded with random documents, or dropped."""


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """int64 ``text_key`` of each text (>= 0); equal keys mean the same text in its matching form."""
    return np.fromiter(map(text_key, texts), dtype=np.int64, count=len(texts))


def row_rng(seed: int, row_id: str) -> np.random.Generator:
    return np.random.default_rng(stable_hash(f"{seed}/{row_id}"))


@dataclass
class QueryGroups:
    """Rows grouped by their query's key: each group is one query, searched once, its rows' negatives shared."""

    rows: list[list[int]]
    """Per group, its rows (positions in the input), lowest id first: the first row's query is embedded and
    its id seeds sampling and padding."""
    group_of_row: np.ndarray
    """(rows,) int64: each row's group."""
    query_keys: np.ndarray
    """(groups,) int64: the text key of each group's query."""
    positive_keys: list[list[int]]
    """Per group, the distinct text keys of its rows' documents, ascending."""

    @property
    def seed_rows(self) -> list[int]:
        return [rows[0] for rows in self.rows]


def group_queries(query_keys: np.ndarray, document_keys: np.ndarray, row_ids: Sequence[str]) -> QueryGroups:
    """Rows (given by the keys of their query and document, and their ids) grouped by query key, groups in
    order of first appearance."""
    members: dict[int, list[int]] = {}
    for row, key in enumerate(query_keys.tolist()):
        members.setdefault(key, []).append(row)
    rows = [sorted(group, key=lambda row: row_ids[row]) for group in members.values()]
    group_of_row = np.empty(len(query_keys), dtype=np.int64)
    for group, group_rows in enumerate(rows):
        group_of_row[group_rows] = group
    return QueryGroups(
        rows=rows,
        group_of_row=group_of_row,
        query_keys=np.array(list(members), dtype=np.int64),
        positive_keys=[sorted(set(document_keys[group_rows].tolist())) for group_rows in rows],
    )


def embed_group_queries(teacher: Teacher, records: Sequence[PairRecord], groups: QueryGroups) -> torch.Tensor:
    """(groups x dim) the teacher's embedding of each group's query (its first row's)."""
    return teacher.encode_queries([records[row]["query"] for row in groups.seed_rows])


def positive_scores(query_embeddings: torch.Tensor, document_embeddings: torch.Tensor, groups: QueryGroups) -> tuple[np.ndarray, np.ndarray]:
    """(rows,) each row's document scored against its group's query, and (groups,) the lowest score of each
    group's rows: the positive score the margins are measured from (the safe side)."""
    row_queries = query_embeddings[torch.from_numpy(groups.group_of_row).to(query_embeddings.device)]
    row_scores = (row_queries.float() * document_embeddings.float()).sum(dim=1).cpu().numpy()
    group_scores = np.full(len(groups.rows), np.inf, dtype=np.float32)
    np.minimum.at(group_scores, groups.group_of_row, row_scores)
    return row_scores, group_scores


def mined_row(record: PairRecord, negatives: list[str], positive_score: float, negative_scores: Sequence[float]) -> PairRecord:
    """The record with its negatives (best first) and the scores in meta (positive_score, negative_scores)."""
    meta: RecordMeta = {**record["meta"], "positive_score": float(positive_score), "negative_scores": [float(s) for s in negative_scores]}
    return {**record, "negatives": negatives, "meta": meta}


@dataclass
class MinedNegatives:
    """One query's negatives: corpus indices and scores, best first, and the outcome (for counters)."""

    indices: list[int]
    scores: list[float]
    outcome: str


def search_depth(config: MiningConfig, positive_slots: np.ndarray) -> np.ndarray:
    """Results to search per query so the window survives removing the query's ``positive_slots`` positives
    (corpus documents whose key is one of its positives')."""
    return config.range_max + positive_slots


def depth_batches(depths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Query batches (positions in ``depths``) of similar search depth: a batch is cut at ``batch_size``
    queries or where the depth would more than double, so a few deep queries do not deepen everyone's search."""
    order = np.argsort(depths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or end - start == batch_size or depths[order[end]] > 2 * depths[order[start]] + 8:
            batches.append(order[start:end])
            start = end
    return batches


def pad_keys(positive_keys: Sequence[Sequence[int]]) -> np.ndarray:
    """Ragged per-query positive keys as a (queries x most positives) matrix padded with NO_KEY."""
    width = max((len(k) for k in positive_keys), default=0)
    out = np.full((len(positive_keys), max(width, 1)), NO_KEY, dtype=np.int64)
    for row, keys in enumerate(positive_keys):
        out[row, : len(keys)] = keys
    return out


def _is_row_member(keys: np.ndarray, row_sets: np.ndarray) -> np.ndarray:
    """keys[r, c] in row_sets[r] for every (r, c); one pass per set column (batches keep sets narrow)."""
    member = np.zeros(keys.shape, dtype=bool)
    for column in row_sets.T:
        member |= keys == column[:, None]
    return member & (keys != NO_KEY)


def _repeats_earlier(keys: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """True where an eligible candidate's key already appeared at a better rank among eligible ones."""
    columns = np.arange(keys.shape[1], dtype=np.int64)
    masked = np.where(eligible, keys, -2 - columns)  # ineligible entries get keys that match nothing
    order = np.argsort(masked, axis=1, kind="stable")
    ordered = np.take_along_axis(masked, order, axis=1)
    repeat_sorted = np.zeros_like(eligible)
    repeat_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    repeat = np.zeros_like(eligible)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    return repeat


@dataclass
class CandidateBatch:
    """A batch of queries' merged top-k search results, best first, and what the guards know of each query."""

    indices: np.ndarray
    """(queries x k) int64 corpus indices; -1 marks an empty slot (corpus smaller than k)."""
    scores: np.ndarray
    """(queries x k) float32 teacher scores."""
    keys: np.ndarray
    """(queries x k) int64 text keys of the candidates (``text_keys``), NO_KEY for empty slots."""
    positive_scores: np.ndarray
    """(queries,) the score the margins are measured from: the lowest of the query's positives."""
    positive_keys: np.ndarray
    """(queries x P) text keys of the query's positives, padded with NO_KEY (``pad_keys``)."""
    query_keys: np.ndarray
    """(queries,) text key of the query itself."""
    row_ids: Sequence[str]
    """One id per query, seeding random sampling and padding."""


def eligible_candidates(batch: CandidateBatch, config: MiningConfig) -> np.ndarray:
    """Boolean (queries x candidates): which candidates pass the window and every false-negative guard."""
    present = batch.indices >= 0
    is_positive = _is_row_member(batch.keys, batch.positive_keys)
    ranked = present & ~is_positive
    rank = np.cumsum(ranked, axis=1) - 1
    eligible = ranked & (rank >= config.range_min) & (rank < config.range_max)
    eligible &= batch.keys != batch.query_keys[:, None]
    scores, positive = batch.scores, batch.positive_scores[:, None]
    if config.relative_margin is not None:
        eligible &= scores <= positive - np.abs(positive) * config.relative_margin
    if config.absolute_margin is not None:
        eligible &= scores + config.absolute_margin <= positive
    if config.max_score is not None:
        eligible &= scores <= config.max_score
    if config.min_score is not None:
        eligible &= scores >= config.min_score
    return eligible & ~_repeats_earlier(batch.keys, eligible)


def _draw_padding(
    rng: np.random.Generator, corpus_keys: np.ndarray, excluded: set[int], need: int
) -> list[int]:
    """Up to ``need`` random corpus indices with distinct keys outside ``excluded`` (rejection, then a scan)."""
    chosen: list[int] = []
    taken = set(excluded)

    def take(indices: np.ndarray) -> None:
        for index in indices.tolist():
            key = int(corpus_keys[index])
            if key not in taken:
                taken.add(key)
                chosen.append(index)
                if len(chosen) == need:
                    return

    for _ in range(PAD_DRAW_ROUNDS):
        take(rng.integers(0, len(corpus_keys), size=4 * need + 16))
        if len(chosen) == need:
            return chosen
    take(rng.permutation(len(corpus_keys)))  # the corpus is nearly exhausted: look at every document once
    return chosen


def _sampled(eligible: np.ndarray, row_ids: Sequence[str], config: MiningConfig) -> np.ndarray:
    """``eligible`` with each row of more than num_negatives survivors cut to a seeded random sample of them."""
    sampled = eligible.copy()
    for row in np.flatnonzero(eligible.sum(axis=1) > config.num_negatives).tolist():
        positions = np.flatnonzero(eligible[row])
        sampled[row] = False
        sampled[row, row_rng(config.seed, row_ids[row]).choice(positions, size=config.num_negatives, replace=False)] = True
    return sampled


def select_negatives(
    batch: CandidateBatch,
    config: MiningConfig,
    corpus_keys: np.ndarray | None = None,
    pad_scores: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> list[MinedNegatives]:
    """Negatives for each query of ``batch``.

    Padding (``too_few="pad"``) needs ``corpus_keys`` (one key per corpus document);
    ``pad_scores(row, doc_indices)`` gives the padded documents' scores (NaN without it).
    """
    if config.too_few == "pad" and corpus_keys is None:
        raise ValueError("too_few='pad' needs corpus_keys to draw random documents from")
    eligible = eligible_candidates(batch, config)
    if config.sampling == "random":
        eligible = _sampled(eligible, batch.row_ids, config)
    wanted = config.num_negatives
    chosen = eligible & (np.cumsum(eligible, axis=1) <= wanted)
    counts = chosen.sum(axis=1)
    rows, columns = np.nonzero(chosen)  # row by row, best first within a row
    bounds = np.cumsum(counts)[:-1]
    row_indices = np.split(batch.indices[rows, columns], bounds)
    row_scores = np.split(batch.scores[rows, columns].astype(float), bounds)
    results: list[MinedNegatives] = []
    for row, (indices_array, scores_array) in enumerate(zip(row_indices, row_scores, strict=True)):
        indices, scores = indices_array.tolist(), scores_array.tolist()
        if len(indices) == wanted:
            results.append(MinedNegatives(indices, scores, FULL))
        elif config.too_few == "drop":
            results.append(MinedNegatives([], [], TOO_FEW))
        elif config.too_few == "keep":
            results.append(MinedNegatives(indices, scores, FEWER))
        else:
            assert corpus_keys is not None
            excluded = {int(k) for k in batch.positive_keys[row] if k != NO_KEY}
            excluded.add(int(batch.query_keys[row]))
            excluded.update(int(k) for k in batch.keys[row] if k != NO_KEY)
            # A separate stream from random sampling's, so padding does not change which candidates were sampled.
            padding = _draw_padding(row_rng(config.seed, f"pad/{batch.row_ids[row]}"), corpus_keys, excluded, wanted - len(indices))
            padding_array = np.asarray(padding, dtype=np.int64)
            padded_scores = pad_scores(row, padding_array) if pad_scores is not None else np.full(len(padding), np.nan)
            results.append(MinedNegatives(indices + padding, scores + [float(s) for s in padded_scores], PADDED))
    return results


@dataclass
class MiningResult:
    """Rows with negatives filled (input order), rows dropped for too few negatives, and outcome counts."""

    kept: list[PairRecord]
    dropped: list[DroppedRecord]
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class MiningCorpus:
    """The documents negatives are drawn from: one text per key (the smallest), in key order, as the Beam job
    reads its corpus (so both break equal scores alike)."""

    texts: list[str]
    keys: np.ndarray


def mining_corpus(texts: Sequence[str], keys: np.ndarray | None = None) -> MiningCorpus:
    """The corpus of ``texts``: the smallest text of each key (the Beam job's ``CombinePerKey(min)``); ``keys``
    are the texts' ``text_keys`` where the caller has them already."""
    by_key: dict[int, str] = {}
    for text, key in zip(texts, (keys if keys is not None else text_keys(texts)).tolist(), strict=True):
        if key not in by_key or text < by_key[key]:
            by_key[key] = text
    ordered = sorted(by_key)
    return MiningCorpus([by_key[key] for key in ordered], np.array(ordered, dtype=np.int64))


def document_embeddings(teacher: Teacher, records: Sequence[PairRecord], corpus: MiningCorpus, corpus_embeddings: torch.Tensor) -> torch.Tensor:
    """(rows x dim) each record's document embedded: taken from the corpus where it is a corpus text, else encoded."""
    position = {text: i for i, text in enumerate(corpus.texts)}
    rows = np.array([position.get(r["document"], -1) for r in records], dtype=np.int64)
    embedded = corpus_embeddings[torch.from_numpy(np.maximum(rows, 0)).to(corpus_embeddings.device)]
    missing = np.flatnonzero(rows < 0)
    if len(missing):
        encoded = teacher.encode_documents([records[i]["document"] for i in missing.tolist()])
        embedded[torch.from_numpy(missing).to(embedded.device)] = encoded.to(embedded.dtype)
    return embedded


def _search_and_select(
    index: CorpusIndex,
    corpus_embeddings: torch.Tensor,
    corpus: MiningCorpus,
    query_embeddings: torch.Tensor,
    groups: QueryGroups,
    group_scores: np.ndarray,
    row_ids: Sequence[str],
    config: MiningConfig,
) -> list[MinedNegatives]:
    """Each group's negatives: search in batches of similar depth, select, and search deeper where needed.

    Top sampling needs only the first num_negatives survivors: search shallow, and deeper only for queries
    whose survivors ran out before their window did. The result is the same as searching full depth.
    """
    key_counts = Counter(corpus.keys.tolist())
    slots = np.array([sum(key_counts[k] for k in keys) for keys in groups.positive_keys], dtype=np.int64)
    full_depth = search_depth(config, slots)
    depth = full_depth if config.sampling == "random" else np.minimum(full_depth, slots + config.range_min + 4 * config.num_negatives + 16)
    chosen: dict[int, MinedNegatives] = {}
    pending = np.arange(len(groups.rows))
    while len(pending):
        deeper: list[int] = []
        for batch in (pending[b] for b in depth_batches(depth[pending], config.query_batch)):
            batch_queries = query_embeddings[torch.from_numpy(batch).to(query_embeddings.device)]
            scores, indices = (t.cpu().numpy() for t in index.search(batch_queries, int(depth[batch].max())))

            def pad_scores(row: int, docs: np.ndarray, batch_queries: torch.Tensor = batch_queries) -> np.ndarray:
                picked = corpus_embeddings[torch.from_numpy(docs).to(corpus_embeddings.device)].float()
                return (picked @ batch_queries[row].float()).cpu().numpy()

            candidates = CandidateBatch(
                indices=indices,
                scores=scores,
                keys=np.where(indices >= 0, corpus.keys[np.maximum(indices, 0)], NO_KEY),
                positive_scores=group_scores[batch],
                positive_keys=pad_keys([groups.positive_keys[g] for g in batch]),
                query_keys=groups.query_keys[batch],
                row_ids=[row_ids[g] for g in batch],
            )
            mined = select_negatives(candidates, config, corpus_keys=corpus.keys, pad_scores=pad_scores)
            searched, corpus_exhausted = indices.shape[1], indices.shape[1] < depth[batch].max() or (indices[:, -1] < 0).any()
            for group, negatives in zip(batch.tolist(), mined, strict=True):
                if negatives.outcome != FULL and searched < full_depth[group] and not corpus_exhausted:
                    depth[group] = min(full_depth[group], 4 * searched)
                    deeper.append(group)
                else:
                    chosen[group] = negatives
        pending = np.array(deeper, dtype=np.int64)
    return [chosen[group] for group in range(len(groups.rows))]


def _assemble(
    records: Sequence[PairRecord], groups: QueryGroups, chosen: list[MinedNegatives], row_scores: np.ndarray, corpus: MiningCorpus
) -> MiningResult:
    """Every row with its group's negatives, or dropped when its group has too few; outcomes counted per row."""
    result = MiningResult(kept=[], dropped=[])
    for row, record in enumerate(records):
        mined = chosen[int(groups.group_of_row[row])]
        result.outcomes[mined.outcome] += 1
        if mined.outcome == TOO_FEW:
            result.dropped.append(dropped(record, MINE_STAGE, TOO_FEW_REASON))
        else:
            result.kept.append(mined_row(record, [corpus.texts[i] for i in mined.indices], row_scores[row], mined.scores))
    return result


def mine_hard_negatives(
    records: Sequence[PairRecord],
    corpus_texts: Sequence[str] | None,
    teacher: Teacher,
    config: MiningConfig,
) -> MiningResult:
    """Fill ``negatives`` (and meta positive_score / negative_scores) for in-memory records.

    The corpus is ``corpus_texts`` or, when None, the records' own documents, one text per key
    (``mining_corpus``). Rows whose queries share a key are searched once and get the same negatives.
    """
    documents = [r["document"] for r in records]
    document_keys = text_keys(documents)
    corpus = mining_corpus(corpus_texts) if corpus_texts is not None else mining_corpus(documents, document_keys)
    groups = group_queries(text_keys([r["query"] for r in records]), document_keys, [r["id"] for r in records])
    corpus_embeddings = cached_document_embeddings(teacher, corpus.texts, config.cache_dir)
    query_embeddings = embed_group_queries(teacher, records, groups)
    row_scores, group_scores = positive_scores(query_embeddings, document_embeddings(teacher, records, corpus, corpus_embeddings), groups)

    index = build_index(corpus_embeddings, config.index, config.query_batch)
    seed_ids = [records[row]["id"] for row in groups.seed_rows]
    chosen = _search_and_select(index, corpus_embeddings, corpus, query_embeddings, groups, group_scores, seed_ids, config)
    return _assemble(records, groups, chosen, row_scores, corpus)
