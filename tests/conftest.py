"""Shared fixtures: the repository root, a private Jupyter config, a modest hypothesis profile."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from tests.hostile_batch import hostile_batch  # noqa: F401 - a session fixture, shared

REPO = Path(__file__).resolve().parents[1]

settings.register_profile("course", max_examples=30, deadline=None)
settings.load_profile("course")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(autouse=True, scope="session")
def _private_jupyter_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A stray user Jupyter/nbgrader config must not change test results."""
    os.environ["JUPYTER_CONFIG_DIR"] = str(tmp_path_factory.mktemp("jupyter_config"))
    os.environ.pop("COURSE_DATASET", None)
    os.environ.pop("NBGRADER_EXECUTION", None)


@pytest.fixture(autouse=True)
def _one_cpu_thread() -> Iterator[None]:
    """Unit tests use tiny tensors: one intra-op thread is faster, and steady on a busy 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
