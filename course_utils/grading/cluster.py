"""``course grade --cluster ADDRESS``: the class's gradings as tasks on a dask.distributed cluster.

One task per (student, stage), each the self-contained job of ``task.py`` (the submission's bytes
in, the outcome's bytes out). The course files reach the workers once per run as a content-addressed
bundle (``bundle.py``) installed by a worker plugin, which dask also runs on a worker that joins or
restarts later. The client merges each result into the gradebook as it arrives, one at a time, in
its own thread, exactly as the local pool does.

Each task's key names its student, stage and grading key, so one run can never hold two tasks for
the same student and stage; a task whose worker dies is rescheduled by the scheduler (up to its
``distributed.scheduler.allowed-failures``), and one that raises is retried ``retries`` times.
``local:N`` starts a ``LocalCluster`` of N single-threaded worker processes for this run.

dask's TCP is unauthenticated: anyone who reaches the scheduler can run code on the workers. Use a
private network, or TLS (``tls://`` addresses with ``distributed.comm.tls`` configured).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from course_utils.grading import bundle
from course_utils.grading.collect import Submission
from course_utils.grading.task import Request, grade_request, unpack
from course_utils.grading.worker import Outcome

RETRIES = 2
_LOCAL = re.compile(r"^local:(\d+)$")
_REMOTE = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")


def check_address(address: str) -> str:
    """``address`` if it names a scheduler (``tcp://host:8786``) or ``local:N``; else ValueError."""
    local = _LOCAL.match(address)
    if local and int(local.group(1)) >= 1 or _REMOTE.match(address):
        return address
    raise ValueError(
        f"--cluster {address!r}: expected a dask scheduler address such as tcp://host:8786 "
        "(or tls://...), or local:N for N worker processes on this machine"
    )


def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "--cluster needs dask.distributed: `pip install -e .[cluster]`"
        ) from None


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address``; ``local:N`` starts (and then stops) a
    ``LocalCluster`` of N processes with one thread each."""
    check_address(address)
    _require_distributed()
    from distributed import Client, LocalCluster

    local = _LOCAL.match(address)
    if local is None:
        with Client(address, timeout="30s") as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=int(local.group(1)),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",  # loopback only: dask's TCP is unauthenticated
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _plugin(course: bundle.Bundle) -> Any:
    from distributed.diagnostics.plugin import WorkerPlugin

    class CourseBundlePlugin(WorkerPlugin):
        """Unpacks the run's course bundle on every worker, present and future."""

        name = f"course-bundle-{course.sha256[:16]}"

        def __init__(self, packed: bundle.Bundle) -> None:
            self.packed = packed

        def setup(self, worker: Any) -> None:
            bundle.unpack(self.packed)

    return CourseBundlePlugin(course)


def task_key(submission: Submission, key: str) -> str:
    """The dask key of a grading: one per student, stage and grading key."""
    return f"course-grade-{submission.student}-{submission.stage}-{key[:16]}"


def grade_on_cluster(
    address: str,
    root: Path,
    todo: list[tuple[Submission, str]],
    templates: dict[str, Path],
    jobs_dir: Path,
    merge: Callable[[Submission, str, Outcome], None],
    *,
    cell_timeout: int | None,
    notebook_timeout: float,
    memory_limit: int | None,
    isolate: bool,
) -> None:
    """Grade ``todo`` (submission, grading key) on the cluster at ``address``; ``merge`` gets each
    outcome in this thread as it arrives. A task that fails for good gives an "error" outcome
    (graded again on the next run), never a stopped batch."""
    from course_utils.grading.autograde import _failed, _package_digest

    if not todo:
        return
    course = bundle.build(root, templates)
    with connect(address) as client:
        from distributed import as_completed

        client.register_plugin(_plugin(course))
        futures, names = {}, set()
        for submission, key in todo:
            request = Request(
                submission.student,
                submission.stage,
                submission.notebook.read_bytes(),
                course.sha256,
                _package_digest(),
                cell_timeout,
                notebook_timeout,
                memory_limit,
                isolate,
            )
            name = task_key(submission, key)
            if name in names:  # collect() gives one notebook per student and stage
                raise RuntimeError(f"two gradings of {submission.student}/{submission.stage}")
            names.add(name)
            future = client.submit(grade_request, request.to_bytes(), key=name, retries=RETRIES)
            futures[future] = (submission, key)
        try:
            for future in as_completed(futures):
                submission, key = futures.pop(future)
                workspace = jobs_dir / f"{submission.student}--{submission.stage}"
                try:
                    outcome = unpack(future.result(), workspace)
                except Exception as error:  # noqa: BLE001 - one submission never stops the batch
                    outcome = _failed(root, submission, error)
                merge(submission, key, outcome)
                future.release()
        except KeyboardInterrupt:  # what was recorded stays; the next run grades the rest
            client.cancel(list(futures))
            raise
