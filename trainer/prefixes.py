"""Which prefix goes before each side of a dataset's texts: config override, else manifest, else Nomic's table.

The table is Nomic Embed's task prefixes per training source, as listed in the contrastors repository
(nomic-ai/contrastors, src/contrastors/configs/data/contrastive_pretrain.yaml and finetune_triplets.yaml):
retrieval-like sources get ``search_query: `` / ``search_document: ``, near-duplicate and topic sources
``classification: `` on both sides, title/body and citation sources ``clustering: `` on both sides.
Names are Nomic's, plus the names pairmill's readers give the same sources (``ag_news``, ``cc_news``,
``cnn_dailymail``).
"""
from __future__ import annotations

from schemas.recipe import Prefixes

SEARCH = Prefixes("search_query: ", "search_document: ")
CLASSIFICATION = Prefixes("classification: ", "classification: ")
CLUSTERING = Prefixes("clustering: ", "clustering: ")

NOMIC_PREFIXES: dict[str, Prefixes] = {
    **dict.fromkeys(
        ["paq", "gooaq", "yahoo_title_answer", "amazonqa", "yahoo_qa", "yahoo_title_question", "eli5", "squad",
         "msmarco", "nq", "hotpotqa", "fever"],
        SEARCH,
    ),
    **dict.fromkeys(
        ["amazon_reviews", "wikianswers", "wikipedia", "agnews", "ag_news", "ccnews", "cc_news", "npr", "cnn",
         "cnn_dailymail", "sentence_compression", "wikihow", "altlex", "quora", "simplewiki", "nli"],
        CLASSIFICATION,
    ),
    **dict.fromkeys(
        ["reddit_title_body", "reddit", "s2orc_citation_titles", "s2orc_title_abstract", "s2orc_abstract_citation",
         "s2orc_abstract_body", "codesearch", "stackexchange_duplicate_questions", "stackexchange_title_body",
         "stackexchange_body_body"],
        CLUSTERING,
    ),
}


def table_prefixes(dataset: str) -> Prefixes:
    """Nomic's prefixes for ``dataset``, trying the name and then the name without trailing ``_parts``
    (``quora_mined`` -> ``quora``); unknown sources are treated as retrieval (search_query/search_document)."""
    parts = dataset.lower().split("_")
    for end in range(len(parts), 0, -1):
        found = NOMIC_PREFIXES.get("_".join(parts[:end]))
        if found is not None:
            return found
    return SEARCH


def resolve_prefixes(dataset: str, manifest_prefixes: dict[str, str], overrides: dict[str, Prefixes], enabled: bool) -> Prefixes:
    """The prefixes the trainer uses for ``dataset``."""
    if not enabled:
        return Prefixes("", "")
    if dataset in overrides:
        return overrides[dataset]
    if manifest_prefixes.get("query") or manifest_prefixes.get("document"):
        return Prefixes(manifest_prefixes.get("query", ""), manifest_prefixes.get("document", ""))
    return table_prefixes(dataset)
