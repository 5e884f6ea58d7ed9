"""Markers that skip cleanly where a test cannot run: GPU-only checks, shared real data.

``slow`` tests (end-to-end runs) run by default; ``make test-fast`` deselects them with ``-m "not slow"``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_gpu = None
    for item in items:
        if "realdata" in item.keywords and not REALDATA.is_dir():
            item.add_marker(pytest.mark.skip(reason=f"{REALDATA} is absent"))
        if "gpu" in item.keywords:
            if has_gpu is None:
                import torch

                has_gpu = torch.cuda.is_available()
            if not has_gpu:
                item.add_marker(pytest.mark.skip(reason="no CUDA GPU"))


@pytest.fixture
def realdata() -> Path:
    """The shared real-format sample files (tests using it carry the realdata marker)."""
    return REALDATA
