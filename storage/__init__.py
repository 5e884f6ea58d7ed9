"""Paths and file IO for the whole package, on Beam FileSystems (local, gs://, s3:// ...): files, manifests, shards, archives."""
