"""The embedding model layer: loading teacher and student models offline, batched encoding, top-k search."""
