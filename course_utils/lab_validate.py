"""The lab's Validate button, the course's way: quick, one line per exercise, readable in its dialog.

nbgrader's Validate runs the whole notebook inside the server's request (the server stalls meanwhile)
and shows each failing cell's traceback cut at the dialog's edge, never which exercises passed. This
jupyter server extension (``course lab`` / ``make lab`` enable it) answers the same request,
``POST /assignments/validate``, in nbgrader's reply format so nbgrader's own lab extension shows it:

- a changed cell type or a modified locked cell is reported as nbgrader reports it (checksums);
- otherwise the notebook runs in a subprocess (the server stays responsive) through
  ``notebook_check.run_exercises``: only the cells the tests need, training shrunk;
- every exercise passes: an empty result, which the dialog shows as "Success!";
- else one entry whose text is one line per exercise, PASS or FAIL with the reason (the first
  failing case and how many more), wrapping inside the dialog (``white-space: pre-wrap``) instead
  of running past its edge.

``python -m course_utils.lab_validate NOTEBOOK`` prints the reply as JSON (the handler runs it with
``--no-checksums`` after checking those itself).
"""

from __future__ import annotations

import asyncio
import html
import json
import sys
from pathlib import Path
from typing import Any

import nbformat

REPLY = "course-validate-reply: "  # marks the JSON line on stdout (the kernel may print there too)
REPLY_TIMEOUT = 900  # seconds: a hang guard for the subprocess, far above a stage's quick run


def _changed(nb: nbformat.NotebookNode) -> dict[str, Any] | None:
    """nbgrader's "type_changed" or "changed" result, or None when every cell is as released."""
    from nbgrader import utils

    type_changed = [
        {
            "source": c.source.strip(),
            "old_type": c.cell_type,
            "new_type": c.metadata.nbgrader.cell_type,
        }
        for c in nb.cells
        if (utils.is_grade(c) or utils.is_solution(c) or utils.is_locked(c))
        and c.metadata.nbgrader.get("cell_type")
        and c.metadata.nbgrader.cell_type != c.cell_type
    ]
    if type_changed:
        return {"type_changed": type_changed}
    changed = [
        {"source": c.source.strip()}
        for c in nb.cells
        if utils.is_locked(c)
        and "checksum" in c.metadata.nbgrader
        and c.metadata.nbgrader.checksum != utils.compute_checksum(c)
    ]
    return {"changed": changed} if changed else None


def _summary_html(lines: list[str]) -> str:
    rows = "".join(
        f'<div class="course-verdict" style="white-space: pre-wrap; word-break: normal; '
        f'overflow-wrap: anywhere; margin: 0 0 0.4em 2em; text-indent: -2em">{html.escape(line)}</div>'
        for line in lines
    )
    return f'<div class="course-validation">{rows}</div>'


def validate(path: Path, *, checksums: bool = True) -> dict[str, Any]:
    """Validate the notebook at ``path``: nbgrader's result format, one line per exercise on failure.

    ``checksums=False`` skips the changed-cell checks (the handler has done them already).
    """
    from course_utils.notebook_check import run_exercises

    if checksums:
        changed = _changed(nbformat.read(path, as_version=4))
        if changed is not None:
            return changed
    run = run_exercises(path)
    failed = [v for v in run.verdicts if not v.passed]
    if not failed:
        return {}
    lines = [v.line(max_cases=1) for v in run.verdicts]  # a dialog, not a report: the first case
    passed = len(run.verdicts) - len(failed)
    head = (
        f"{path.name}: {passed} of {len(run.verdicts)} exercises pass; submitted as it is, "
        f"{'this one scores' if len(failed) == 1 else 'these score'} 0:"
    )
    note = f"(ran the {run.cells_run} cells the tests need in {run.seconds:.0f} s; training shrunk)"
    text = "\n".join([*lines, note])
    return {"failed": [{"source": head, "error": _summary_html([*lines, note]), "raw_error": text}]}


async def validate_in_subprocess(path: Path, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
    """``validate(path)`` as nbgrader's handler replies ``{success, value}``: the checksums here (the
    server has nbgrader imported already, a fresh process would spend seconds on it), the run in a
    fresh Python process."""
    changed = _changed(nbformat.read(path, as_version=4))
    if changed is not None:
        return {"success": True, "value": changed}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "course_utils.lab_validate",
        "--no-checksums",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(path.parent),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return {"success": False, "value": f"validation took more than {timeout:.0f} s; stopped"}
    replies = [line for line in out.decode().splitlines() if line.startswith(REPLY)]
    if process.returncode != 0 or not replies:
        return {"success": False, "value": err.decode(errors="replace")[-4000:]}
    return {"success": True, "value": json.loads(replies[-1][len(REPLY) :])}


def _handler_class() -> type:
    from jupyter_server.base.handlers import JupyterHandler
    from tornado import web

    class CourseValidateHandler(JupyterHandler):
        """``POST /assignments/validate`` with ``path``: the course's Validate (see module doc)."""

        @web.authenticated
        async def post(self) -> None:
            try:
                relative = self.get_argument("path")
            except web.MissingArgumentError:
                relative = (self.get_json_body() or {}).get("path", "")
            root = Path(self.settings["server_root_dir"]).resolve()
            target = (root / relative).resolve()
            if not target.is_relative_to(root) or target.suffix != ".ipynb":
                raise web.HTTPError(403, "Access denied: not a notebook inside the course")
            self.log.info("course Validate: %s (only the cells its tests need)", target)
            reply = await validate_in_subprocess(target)
            self.finish(json.dumps(reply))

    return CourseValidateHandler


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "course_utils.lab_validate"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Put the course's handler in front of nbgrader's for the same URL (whatever the load order)."""
    from jupyter_server.utils import url_path_join
    from tornado.routing import HostMatches, Rule
    from tornado.web import _ApplicationRouter

    web_app = serverapp.web_app
    pattern = url_path_join(web_app.settings["base_url"], "/assignments/validate")
    router = _ApplicationRouter(web_app, [(pattern, _handler_class())])
    web_app.default_router.rules.insert(0, Rule(HostMatches(".*$"), router))
    serverapp.log.info("course_utils: Validate runs only what the tests need (%s)", pattern)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    checksums = "--no-checksums" not in args
    paths = [a for a in args if a != "--no-checksums"]
    if len(paths) != 1:
        print(
            "usage: python -m course_utils.lab_validate [--no-checksums] NOTEBOOK", file=sys.stderr
        )
        return 2
    print(REPLY + json.dumps(validate(Path(paths[0]).resolve(), checksums=checksums)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
