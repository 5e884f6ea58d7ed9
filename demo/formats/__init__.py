"""One writer per source format of the demo corpus: each turns a seeded stream into the files and their ground truth."""
