"""One grading as a self-contained task: a submission's bytes in, its outcome's bytes out.

This is the job the local pool runs (``worker.prepare``, ``run``, ``finish``), made portable for
a cluster worker (``cluster.py``): the :class:`Request` carries the notebook's bytes, the name of
the course bundle (``bundle.py``) and the grading options; :func:`grade_request` grades it in a
private temporary workspace on whatever machine runs it and returns the outcome with the autograded
notebook and the feedback as bytes (:func:`pack`), which the client turns back into an
:class:`Outcome` with files (:func:`unpack`) and records as it records a local grading.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from course_utils.grading import bundle, sandbox, worker
from course_utils.grading.collect import Submission
from course_utils.grading.worker import Outcome

# worker.prepare and finish parse and compile Python, which CPython 3.11 cannot do from several
# threads at once; a dask worker with --nthreads N runs N tasks in threads, so they take turns.
_PARSING = threading.Lock()


@dataclass(frozen=True)
class Request:
    """Everything a worker needs to grade one student's stage, besides the course bundle."""

    student: str
    stage: str
    notebook: bytes
    bundle: str  # the course bundle's SHA-256
    package: str  # the client's course_utils digest: the checks must be the same code
    cell_timeout: int | None = None
    notebook_timeout: float = 1800
    memory_limit: int | None = None
    isolate: bool = True

    def to_bytes(self) -> bytes:
        fields = asdict(self)
        fields["notebook"] = base64.b64encode(self.notebook).decode()
        return json.dumps(fields).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Request:
        fields = json.loads(data)
        fields["notebook"] = base64.b64decode(fields["notebook"])
        return cls(**fields)


def grade_request(data: bytes) -> bytes:
    """Grade the :class:`Request` ``data`` in a private workspace, removed afterwards; returns
    :func:`pack` of its outcome. Raises (so dask can retry elsewhere) only when this machine
    cannot grade as asked: the bundle is missing, its course_utils is not the client's, or the
    request wants the sandbox and bubblewrap does not work here."""
    request = Request.from_bytes(data)
    scratch = Path(tempfile.mkdtemp(prefix="course-task-"))
    try:
        return pack(_grade(request, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _grade(request: Request, scratch: Path) -> Outcome:
    from course_utils.grading.autograde import _package_digest

    with _PARSING:
        if _package_digest() != request.package:
            raise RuntimeError(
                "this worker's course_utils differs from the client's: install the same course "
                "commit on every worker (`pip install -e .[cluster]`)"
            )
        if request.isolate and not sandbox.available():  # fail closed: never grade unsandboxed
            raise RuntimeError(f"this worker cannot sandbox: {sandbox.unavailable_reason()}")
        folder = bundle.location(request.bundle)
        notebook = scratch / "inbox" / f"{request.stage}.ipynb"
        notebook.parent.mkdir()
        notebook.write_bytes(request.notebook)
        submission = Submission(
            request.student,
            request.stage,
            notebook,
            hashlib.sha256(request.notebook).hexdigest(),
        )
        prepared = worker.prepare(
            folder / bundle.COURSE,
            submission,
            folder / bundle.TEMPLATES / request.stage,
            scratch / "workspace",
            cell_timeout=request.cell_timeout,
            notebook_timeout=request.notebook_timeout,
            memory_limit=request.memory_limit,
            isolate=request.isolate,
        )
    if isinstance(prepared, Outcome):
        return prepared
    # The same grading process, started through the guard: it dies with this worker.
    prepared.args = ["-m", "course_utils.grading.orphan_guard", *prepared.args[1:]]
    job = worker.run(prepared)
    with _PARSING:
        return worker.finish(job)


_FILES = ("autograded", "feedback")


def pack(outcome: Outcome) -> bytes:
    """``outcome`` with the bytes of its autograded notebook and feedback, as JSON."""
    fields = {
        name: getattr(outcome, name)
        for name in ("student", "stage", "score", "max_score", "cells", "status", "notes")
    }
    fields.update(seconds=outcome.seconds, log=outcome.log)
    for name in _FILES:
        path = getattr(outcome, name)
        data = path.read_bytes() if path is not None and path.exists() else None
        fields[name] = None if data is None else base64.b64encode(data).decode()
    return json.dumps(fields).encode()


def unpack(data: bytes, workspace: Path) -> Outcome:
    """The :class:`Outcome` of :func:`pack`'s ``data``, its files written under ``workspace``
    (replaced) with the names nbgrader gives them."""
    fields = json.loads(data)
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    files = {}
    for name, suffix in zip(_FILES, (".ipynb", ".html"), strict=True):
        encoded = fields.pop(name)
        if encoded is not None:
            path = workspace / name / f"{fields['stage']}{suffix}"
            path.parent.mkdir()
            path.write_bytes(base64.b64decode(encoded))
            files[name] = path
    return Outcome(**fields, workspace=workspace, **files)
