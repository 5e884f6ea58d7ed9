"""The stages of a build and their order, declared once: the build graph, the plan, the funnel and the
report all read them from here."""
from __future__ import annotations

READ = "read"
CLEAN = "clean"
LANGUAGE = "language"
EXACT_DEDUP = "exact_dedup"
NEAR_DEDUP = "near_dedup"
DECONTAMINATE = "decontaminate"
CONSISTENCY = "consistency"
MINE = "mine"
WRITE = "write"

# The recipe's filters, in the order a build runs them.
CURATION_STAGES = (CLEAN, LANGUAGE, EXACT_DEDUP, NEAR_DEDUP, DECONTAMINATE, CONSISTENCY)
DEDUP_STAGES = (EXACT_DEDUP, NEAR_DEDUP)
# Every stage a dataset's records pass, in order: a build's, then mining's.
STAGE_ORDER = (READ, *CURATION_STAGES, MINE, WRITE)
