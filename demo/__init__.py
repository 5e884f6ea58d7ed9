"""The offline demo: its generated sample corpus (word tables in demo/data/, one writer per source format), the
planted ground truth and the scoring against it, and the demo's recipe and training step."""
