"""Which gradebook ``course grade`` merges into: ``--db URL``, or the course's own SQLite file.

nbgrader reads its gradebook through SQLAlchemy from ``CourseDirectory.db_url``; the formgrader
shows whatever that URL names. SQLite is the default, but nbgrader's FAQ warns it "is not
threadsafe": when several people grade, or a cluster feeds one gradebook, use PostgreSQL.
``postgresql://user@host:port/db`` is mapped to the driver that is installed (psycopg 3 from the
``cluster`` extra, else psycopg2), since SQLAlchemy's bare ``postgresql://`` means psycopg2 only.
Put passwords in ``~/.pgpass`` or ``PGPASSWORD``, not in the URL: nbgrader gets the URL on its
command line, which other users of the machine can read.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

_POSTGRES_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))  # (module, SQLAlchemy name)


def resolve(url: str | None, cwd: Path | None = None) -> str | None:
    """``url`` as SQLAlchemy needs it (None stays None: the course's ``_grading/gradebook.db``).

    A relative ``sqlite:///path`` is made absolute from ``cwd`` (default: the working directory),
    because the grader runs nbgrader in other folders.
    """
    if url is None:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            f"--db {url!r} is not a database URL; expected e.g. sqlite:///gradebook.db or "
            "postgresql://user@host:5432/gradebook"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError(
                f"--db {url!r}: a gradebook must be a file, e.g. sqlite:///gradebook.db"
            )
        path = Path(parsed.database)
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        return f"sqlite:///{path.resolve()}"
    if parsed.drivername in ("postgresql", "postgres"):
        for module, driver in _POSTGRES_DRIVERS:
            if importlib.util.find_spec(module) is not None:
                return parsed.set(drivername=f"postgresql+{driver}").render_as_string(
                    hide_password=False
                )
        raise ValueError(
            f"--db {url!r} needs a PostgreSQL driver: `pip install -e .[cluster]` (psycopg)"
        )
    return url


def course_url(root: Path, url: str | None) -> str:
    """The URL to open: ``url`` if given, else the course gradebook ``_grading/gradebook.db``."""
    return url or f"sqlite:///{root / '_grading' / 'gradebook.db'}"


def nbgrader_args(url: str | None) -> list[str]:
    """Arguments that point an ``nbgrader`` command at ``url`` (none for the course default)."""
    return [] if url is None else [f"--CourseDirectory.db_url={url}"]


def marker_name(stage: str, url: str | None) -> str:
    """The file recording that ``stage``'s current source is in the gradebook ``url``.

    The default gradebook keeps the name it always had; another gives its URL's digest, so
    grading into a second database generates the assignment there too.
    """
    if url is None:
        return f"{stage}.sha256"
    return f"{stage}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.sha256"


def knows_assignment(url: str, stage: str) -> bool:
    """Whether the gradebook at ``url`` exists and has the assignment ``stage``.

    Read with plain SQLAlchemy: nbgrader's ``Gradebook`` would create a missing database, and
    shells out to ``alembic`` to do it.
    """
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        return False
    engine = create_engine(url)
    try:
        if not inspect(engine).has_table("assignment"):
            return False
        with engine.connect() as connection:
            query = text("SELECT 1 FROM assignment WHERE name = :name")
            return connection.execute(query, {"name": stage}).first() is not None
    finally:
        engine.dispose()
