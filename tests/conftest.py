"""Shared fixtures (the repository root, a private Jupyter config, a modest hypothesis profile) and the
order and grouping that let ``make test`` run the suite on two pytest-xdist workers."""

from __future__ import annotations

import functools
import itertools
import os
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import settings

from tests.hostile_batch import hostile_batch  # noqa: F401 - a session fixture, shared
from tests.worker_groups import (  # noqa: F401 - the xdist hooks: the suite's groups and order
    pytest_collection_modifyitems,
    pytest_configure_node,
    pytest_xdist_make_scheduler,
)

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
# calls it over the channel (course_utils/grading/scoring/remote.py). A test module reaches a check
# three ways, all rerouted: a name it imported (``check_x``), an attribute of a check module it
# imported (``checks.check_x``), and a check handed to the test as a parameter
# (``@pytest.mark.parametrize("check", [check_x])``). A test that still ran a check on a local answer
# fails, so no test file can silently stay out of the channel.
def _remote_checks() -> bool:
    return bool(os.environ.get("COURSE_REMOTE_CHECKS"))


def _is_check_test(module: types.ModuleType | None) -> bool:
    name = getattr(module, "__name__", "")
    return name.startswith(("tests.test_checks_", "test_checks_"))


@pytest.fixture(scope="session")
def _answer_process():
    from course_utils.grading.scoring.remote import AnswerProcess

    path = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    with AnswerProcess([], env=env, cwd=str(REPO)) as process:
        process.start()
        yield process


class _Channel:
    """The remote versions of the checks, and counts of the checks run each way."""

    def __init__(self, process: Any) -> None:
        from course_utils.checks import all_checks

        self.process = process
        self.counter = itertools.count()
        self.remote = {check: self._through(check) for check in all_checks().values()}
        self.calls = 0  # checks called through the channel
        self.reports = 0  # checks run at all (each makes one Report)

    def _through(self, check: Callable[..., Any]) -> Callable[..., Any]:
        process = self.process

        @functools.wraps(check)
        def run(answer: Any, *args: Any, **kwargs: Any) -> Any:
            name = getattr(answer, "__name__", "")
            name = name if name.isidentifier() else f"answer_{next(self.counter)}"
            process.reset()
            process.define(name, answer)
            stand_in = process.klass(name) if isinstance(answer, type) else process.function(name)
            self.calls += 1
            return check(stand_in, *args, **kwargs)

        run.through_the_channel = True  # type: ignore[attr-defined]
        return run

    def remote_of(self, value: Any) -> Callable[..., Any] | None:
        """The channel's version of ``value`` if it is a check, else None."""
        try:
            return self.remote.get(value)
        except TypeError:  # unhashable: not a check
            return None

    def module_view(self, module: types.ModuleType) -> types.ModuleType | None:
        """A copy of a check module whose ``check_*`` go through the channel (None if it has none)."""
        if not module.__name__.startswith("course_utils.checks."):
            return None
        checks = {n: self.remote_of(v) for n, v in vars(module).items()}
        checks = {n: v for n, v in checks.items() if v is not None}
        if not checks:
            return None
        view = types.ModuleType(module.__name__, module.__doc__)
        view.__dict__.update(vars(module))
        view.__dict__.update(checks)
        return view


@pytest.fixture(scope="session")
def _channel(_answer_process) -> _Channel:
    return _Channel(_answer_process)


@pytest.fixture(autouse=True)
def _checks_through_the_channel(request: pytest.FixtureRequest) -> Iterator[None]:
    if not _remote_checks() or not _is_check_test(request.module):
        yield
        return
    from course_utils.checks import _report

    channel: _Channel = request.getfixturevalue("_channel")
    module = request.module
    swapped: dict[str, Any] = {}
    for name, value in list(vars(module).items()):
        if isinstance(value, types.ModuleType):
            view = channel.module_view(value)
        else:
            view = channel.remote_of(value)
        if view is not None:
            swapped[name] = value
            setattr(module, name, view)
    init = _report.Report.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        channel.reports += 1
        init(self, *args, **kwargs)

    calls, reports = channel.calls, channel.reports
    _report.Report.__init__ = counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        _report.Report.__init__ = init  # type: ignore[method-assign]
        for name, value in swapped.items():
            setattr(module, name, value)
    ran, remote = channel.reports - reports, channel.calls - calls
    assert ran <= remote, (
        f"{ran - remote} of this test's {ran} check runs did not go through the channel: "
        "call the check by a name tests/conftest.py reroutes"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[None]:
    """Under COURSE_REMOTE_CHECKS, a check given to a test as a parameter goes through the channel."""
    if _remote_checks() and _is_check_test(pyfuncitem.module):
        channel: _Channel = pyfuncitem._request.getfixturevalue("_channel")
        for key, value in list(pyfuncitem.funcargs.items()):
            remote = channel.remote_of(value)
            if remote is not None:
                pyfuncitem.funcargs[key] = remote
    yield
