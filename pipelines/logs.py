"""The console: logging for the command line and for the local runner's worker processes.

A normal build prints pairmill's progress, its funnel, and the warnings and errors of the command line
and of its workers. Beam's lines that every run prints whatever happens are dropped where they start,
each by a filter on the one logger that emits it, matching its text:

- ``apitools not found, and bigquery client libraries are not available ...`` (every process): Beam logs
  it on the root logger when ``import apache_beam`` reaches its BigQuery client without google-apitools
  (which only Beam's ``gcp`` extra, pairmill's ``dataflow`` extra, installs); pairmill does not use
  BigQuery. The filter must be in place, with a handler, before Beam is imported, or ``logging.warning``
  first installs Python's default stderr handler. So the command line imports no Beam before
  ``configure``.
- ``INFO:__main__:Logging handler created.`` (each worker, Beam's ``sdk_worker_main``, logged at INFO
  before the worker reads the pipeline options): it reached stderr only through that default handler,
  installed in the worker by the apitools record. The local runner therefore starts its workers as
  ``python -m pipelines.logs`` (``run_worker``): the filters, then Beam's ``sdk_worker_main``. A worker's
  records then go only through Beam's log channel to the command line, which prints them at its
  ``--log-level``; the workers log at that level too (``--default_sdk_harness_log_level``, unless given).
- In each worker, ``No semi_persistent_directory found ...`` (the local runner gives its workers none)
  and ``Discarding unparseable args ...`` (Beam's own direct-runner flags, which the command line passed
  on; a user's unknown flag stops the command line before any worker starts).

``pairmill --log-level INFO`` (or ``DEBUG``) brings Beam's logs back, the workers' included; with
``PAIRMILL_BEAM_NOTICES=1`` in the environment no notice above is dropped either.
"""
from __future__ import annotations

import logging
import os
import shlex
import sys

FORMAT = "%(levelname)s %(name)s: %(message)s"
WORKER_COMMAND = f"{shlex.quote(sys.executable)} -m pipelines.logs"
KEEP_NOTICES = "PAIRMILL_BEAM_NOTICES"  # set to 1: drop none (the workers inherit the environment)


class Notice(logging.Filter):
    """Drops the records of one logger whose message starts with ``prefix``; passes everything else."""

    def __init__(self, logger: str, prefix: str) -> None:
        super().__init__()
        self.logger, self.prefix = logger, prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == self.logger and record.getMessage().startswith(self.prefix))

    def install(self) -> None:
        """On its logger (a logger's filter sees only the records logged on it); twice is once."""
        if os.environ.get(KEEP_NOTICES) == "1":
            return
        logging.getLogger(None if self.logger == "root" else self.logger).addFilter(self)


BEAM_IMPORT_NOTICE = Notice("root", "apitools not found")
WORKER_NOTICES = [
    Notice("apache_beam.runners.worker.sdk_worker_main", "No semi_persistent_directory found"),
    Notice("apache_beam.options.pipeline_options", "Discarding unparseable args"),
]


def configure(level: str | int) -> None:
    """The command line's logging: stderr at ``level`` in pairmill's format, Beam's import notice dropped.

    Call it before anything imports Beam; where the root logger already has handlers (a host program,
    pytest) only the filter is added.
    """
    logging.basicConfig(level=level, format=FORMAT)
    BEAM_IMPORT_NOTICE.install()


def worker_log_level() -> str:
    """The workers' default log level: the command line's."""
    return logging.getLevelName(logging.getLogger().getEffectiveLevel())


def run_worker() -> None:
    """A local runner worker process: Beam's SDK harness, with its notices dropped.

    Until the harness connects its log channel, warnings go to stderr; after, through the channel only
    (a stderr handler kept on would print each worker warning twice).
    """
    root = logging.getLogger()
    early = logging.StreamHandler()
    early.setLevel(logging.WARNING)
    early.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(early)
    for notice in [BEAM_IMPORT_NOTICE, *WORKER_NOTICES]:
        notice.install()
    from apache_beam.runners.worker import sdk_worker_main

    root.removeHandler(early)
    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    run_worker()
