"""The course files a grading task needs, as one content-addressed archive for cluster workers.

A grading job (``worker.prepare``) needs ``nbgrader_config.py``, ``solutions/<stage>/`` (the source
with the hidden tests) and the stage's template gradebook. :func:`build` packs them for the stages of
one run into a deterministic ``.tar.gz`` named by its SHA-256; a worker plugin (``cluster.py``)
carries it to every dask worker once (and again to a worker that restarts after a crash), and
:func:`unpack` puts it under ``$TMPDIR/course-grade-bundles/<sha256>/`` (or ``$COURSE_BUNDLE_DIR``),
where :func:`location` finds it. Nothing else of the instructor's machine reaches a worker: no
shared file system is needed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

COURSE = "course"  # the unpacked course root: nbgrader_config.py and solutions/
TEMPLATES = "templates"  # templates/<stage>/_grading/gradebook.db
_IGNORED = {".ipynb_checkpoints", "__pycache__", "results"}


@dataclass(frozen=True)
class Bundle:
    """A packed course: the archive's bytes and their SHA-256 (its name everywhere)."""

    data: bytes
    sha256: str


def build(root: Path, templates: dict[str, Path]) -> Bundle:
    """Pack ``root``'s nbgrader config, the sources of the ``templates``' stages and each template's
    gradebook and release notebook. Same files, same bytes: entries are sorted and carry no owner or time."""
    files: list[tuple[str, Path]] = [(f"{COURSE}/nbgrader_config.py", root / "nbgrader_config.py")]
    for stage in sorted(templates):
        source = root / "solutions" / stage
        for path in sorted(source.rglob("*")):
            if path.is_file() and not _IGNORED & set(path.relative_to(source).parts):
                files.append((f"{COURSE}/solutions/{stage}/{path.relative_to(source)}", path))
        gradebook = templates[stage] / "_grading" / "gradebook.db"
        files.append((f"{TEMPLATES}/{stage}/_grading/gradebook.db", gradebook))
        # the student version, which edited grading metadata is restored from (metadata.py)
        release = f"release/{stage}/{stage}.ipynb"
        files.append((f"{TEMPLATES}/{stage}/{release}", templates[stage] / release))
    buffer = io.BytesIO()
    # mtime=0 in the gzip header too, or the digest would change with the clock
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as archive,
    ):
        for name, path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    return Bundle(data, hashlib.sha256(data).hexdigest())


def cache_dir() -> Path:
    """Where workers keep unpacked bundles (``$COURSE_BUNDLE_DIR``, else under ``$TMPDIR``)."""
    configured = os.environ.get("COURSE_BUNDLE_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "course-grade-bundles"


def location(sha256: str) -> Path:
    """The unpacked bundle ``sha256`` on this machine; FileNotFoundError if it is not there."""
    folder = cache_dir() / sha256
    if not (folder / COURSE / "nbgrader_config.py").is_file():
        raise FileNotFoundError(
            f"course bundle {sha256[:12]} is not on this worker ({folder}); it is installed by "
            "the worker plugin that `course grade --cluster` registers"
        )
    return folder


def unpack(bundle: Bundle) -> Path:
    """Unpack ``bundle`` into :func:`cache_dir` once; safe when several workers of one machine do
    it at once (each unpacks into a folder of its own, then renames it into place)."""
    if hashlib.sha256(bundle.data).hexdigest() != bundle.sha256:
        raise ValueError(f"course bundle {bundle.sha256[:12]}: its bytes do not match its name")
    target = cache_dir() / bundle.sha256
    if (target / COURSE / "nbgrader_config.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{bundle.sha256[:12]}-", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as archive:
            archive.extractall(scratch, filter="data")
        try:
            scratch.rename(target)
        except OSError:  # another worker was first: its copy has the same bytes
            if not (target / COURSE / "nbgrader_config.py").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
