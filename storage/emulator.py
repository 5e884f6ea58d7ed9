"""``STORAGE_EMULATOR_HOST``: talk to a GCS JSON-API emulator (fake-gcs-server) instead of Google, without credentials.

google-cloud-storage already sends every request to ``STORAGE_EMULATOR_HOST`` when it is set. Two things of
Beam's GCS filesystem (``apache_beam.io.gcp.gcsio``) still need the real service, and ``configure`` changes
them in this process only, only while the variable is set (every process imports it through
``storage.files``, Beam's workers included):

- credentials: Beam looks for Google credentials first, and where there are none it retries with
  backoff for about half a minute per process before it connects anonymously. An emulator wants no
  credentials, so Beam's client is made anonymous at once (``create_storage_client`` with
  ``use_credentials=False``, Beam's own anonymous client).
- batches: Beam deletes and renames (copy, then delete) through the JSON API's batch endpoint.
  google-cloud-storage sends the parts of a batch without a ``Content-ID`` header, which the GCS
  service accepts; fake-gcs-server skips every part without one (``handleBatchCall`` in its
  ``fakestorage/server.go``) and answers an empty multipart body, which google-cloud-storage rejects
  ("Bad response: not multi-part"), so no delete or rename would work. Each part gets a
  ``Content-ID`` (the GCS batch documentation's own examples carry one).

Without the variable nothing is changed; without Beam's ``gcp`` extra there is no GCS filesystem to change.
"""
from __future__ import annotations

import itertools
import os
from typing import Any

VARIABLE = "STORAGE_EMULATOR_HOST"
_configured = False


def endpoint() -> str | None:
    """The emulator's address when ``STORAGE_EMULATOR_HOST`` is set, else None."""
    return os.environ.get(VARIABLE) or None


def configure() -> bool:
    """Point Beam's GCS filesystem at the emulator when ``STORAGE_EMULATOR_HOST`` is set; True when it did."""
    global _configured
    if _configured:
        return True
    if endpoint() is None:
        return False
    try:
        from apache_beam.io.gcp import gcsio
        from google.cloud.storage import batch
    except ImportError:  # no gcp extra: Beam has no gs:// filesystem to configure
        return False

    create_client = gcsio.create_storage_client

    def anonymous_client(pipeline_options: Any, use_credentials: bool = True) -> Any:
        return create_client(pipeline_options, use_credentials=False)

    numbers = itertools.count(1)
    base: Any = batch.MIMEApplicationHTTP

    class NumberedPart(base):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self["Content-ID"] = f"<pairmill-{os.getpid()}-{next(numbers)}>"

    gcsio.create_storage_client = anonymous_client
    batch.MIMEApplicationHTTP = NumberedPart
    _configured = True
    return True
