"""Shared fixtures (the repository root, a private Jupyter config, a modest hypothesis profile) and the
order and grouping that let ``make test`` run the suite on two pytest-xdist workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from tests.hostile_batch import hostile_batch  # noqa: F401 - a session fixture, shared
from tests.worker_groups import group_and_order

REPO = Path(__file__).resolve().parents[1]

# Under pytest-xdist (`make test` runs two workers on two cores) the kernels, graders and other
# processes a test starts get one thread each: two workers each starting a 2-thread kernel would
# oversubscribe the cores, and torch's spinning threads then run many times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

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


# COURSE_REMOTE_CHECKS=1 runs the check tests the way trusted grading runs checks: every answer a
# test hands to a check_* function goes to an answer process and the check gets a stand-in that
# calls it over the channel (course_utils/grading/scoring/remote.py).
@pytest.fixture(scope="session")
def _answer_process():
    from course_utils.grading.scoring.remote import AnswerProcess

    path = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    with AnswerProcess([], env=env, cwd=str(REPO)) as process:
        process.start()
        yield process


@pytest.fixture(autouse=True)
def _checks_through_the_channel(request: pytest.FixtureRequest):
    if not os.environ.get("COURSE_REMOTE_CHECKS") or not request.module.__name__.startswith(
        ("tests.test_checks_", "test_checks_")
    ):
        yield
        return
    process = request.getfixturevalue("_answer_process")
    module = request.module
    originals = {n: v for n, v in vars(module).items() if n.startswith("check_") and callable(v)}
    counter = iter(range(10**9))

    def remote(check):
        def run(answer, *args, **kwargs):
            name = getattr(answer, "__name__", "")
            name = name if name.isidentifier() else f"answer_{next(counter)}"
            process.reset()
            process.define(name, answer)
            is_class = isinstance(answer, type)
            stand_in = process.klass(name) if is_class else process.function(name)
            return check(stand_in, *args, **kwargs)

        return run

    for name, check in originals.items():
        setattr(module, name, remote(check))
    try:
        yield
    finally:
        for name, check in originals.items():
            setattr(module, name, check)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    group_and_order(items)
