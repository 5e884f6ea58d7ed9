"""A Beam plugin for tests/test_console.py (``--beam_plugins=tests.worker_warning``): each worker process
imports it as it starts and logs a warning under pairmill's name, as a stage would."""
from __future__ import annotations

import logging

MESSAGE = "pairmill test: a warning from a worker"

logging.getLogger("pairmill.test").warning(MESSAGE)
