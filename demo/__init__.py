"""The offline demo's sample corpus: generated texts, one writer per source format, and the planted ground truth."""
