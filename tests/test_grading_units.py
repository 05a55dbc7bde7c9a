"""The pieces of ``course grade`` that need no nbgrader run: audit, sandbox, collect, output and
memory limits."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course_utils.grading import sandbox
from course_utils.grading.audit import audit_notebook
from course_utils.grading.collect import collect
from course_utils.grading.memory import describe, is_out_of_memory, parse_size
from course_utils.grading.preprocessors import LimitOutputSize

REPO = Path(__file__).resolve().parents[1]
NEEDS_SANDBOX = pytest.mark.skipif(
    not sandbox.available(), reason=f"no grading sandbox here: {sandbox.unavailable_reason()}"
)


def _nb(*sources: str) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell(s) for s in sources])


# audit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import course_utils.checks as c\nc.check_x = lambda f: None", "changes c.check_x"),
        ("from course_utils import checks\nchecks.Report.passed = True", "changes checks.Report"),
        ("from course_utils import checks\nsetattr(checks, 'check_x', 1)", "setattr(checks"),
        ("import course_utils\ndel course_utils.checks.check_x", "changes course_utils.checks"),
        ("import sys\nsys.modules['course_utils.checks'] = None", "sys.modules"),
        ("import importlib", "import importlib"),
        ("from importlib import reload", "from importlib import"),
        ("import builtins", "import builtins"),
        ("__builtins__.print = None", "__builtins__"),
        ("import gc\ngc.get_objects()", "import gc"),
        ("import sys\nsys._getframe(1)", "sys._getframe"),
        ("import inspect\ninspect.currentframe()", "inspect.currentframe"),
        ("exec('x = 1')", "exec(...)"),
        ("eval('1')", "eval(...)"),
        ("get_ipython().events.register('pre_run_cell', print)", "events.register"),
        ("get_ipython().input_transformers_cleanup.append(str)", "input_transformers_cleanup"),
        ("ip = get_ipython()\nip.ast_transformers.append(1)", "ast_transformers"),
    ],
)
def test_audit_flags_code_that_tampers_with_the_grader(source: str, expected: str) -> None:
    findings = audit_notebook(_nb("x = 1", source))
    assert findings, source
    assert expected in str(findings[0]) and findings[0].cell == 1


@pytest.mark.parametrize(
    "source",
    [
        "from course_utils.checks import check_x\ncheck_x = 3",  # rebinding a name is harmless
        "def check_expected_initial_loss(f):\n    return None",
        "model.eval()\ntorch.compile(model)\nre.compile('x')",
        "%timeit sum(range(10))\n!ls",
        "import torch\ntorch.nn.Linear.reset_parameters = None",  # not the grader
        "def broken(:",  # a syntax error costs what it costs when run, not here
    ],
)
def test_audit_leaves_ordinary_code_alone(source: str) -> None:
    assert audit_notebook(_nb(source)) == []


@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_audit_finds_nothing_in_the_course_notebooks(folder: str) -> None:
    for path in sorted((REPO / folder).glob("*/*.ipynb")):
        assert audit_notebook(nbformat.read(path, as_version=4)) == [], path


# sandbox --------------------------------------------------------------------------------------


def _run_sandboxed(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    work, runtime = tmp_path / "work", tmp_path / "runtime"
    work.mkdir(exist_ok=True)
    runtime.mkdir(exist_ok=True)
    argv = sandbox.kernel_argv(work, runtime)
    argv = argv[: argv.index("-m")] + ["-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@NEEDS_SANDBOX
def test_sandbox_hides_the_course_and_keeps_writes_inside(tmp_path: Path) -> None:
    secret = tmp_path / "solutions" / "answer.txt"
    secret.parent.mkdir()
    secret.write_text("42")
    code = f"""
import os, course_utils, torch
for path in [{str(secret)!r}, {str(REPO / "solutions")!r}, {str(REPO / "README.md")!r}]:
    print("seen" if os.path.exists(path) else "hidden", path)
for path in [{str(tmp_path / "HACKED")!r}, {str(REPO / "HACKED")!r}, "/usr/HACKED", "mine.txt"]:
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError:
        print("refused", path)
print("cwd", os.getcwd(), "home", os.environ["HOME"])
"""
    result = _run_sandboxed(tmp_path, code)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "seen" not in out, out
    assert "wrote mine.txt" in out
    assert "refused /usr/HACKED" in out, out
    # /submission and /tmp (pytest's folders; a checkout there) are the sandbox's private tmpfs: a
    # write succeeds inside but never reaches the host, not even the working folder
    # (sandbox.sandbox_argv), which is what matters:
    assert not (tmp_path / "work" / "mine.txt").exists()
    assert not (tmp_path / "HACKED").exists() and not (REPO / "HACKED").exists()
    assert "cwd /submission home /tmp" in out  # its real path would say where the course is


@NEEDS_SANDBOX
def test_sandbox_has_its_own_tmp_and_process_tree(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("x")
    code = "import os; print(sorted(os.listdir('/tmp'))); print(sorted(os.listdir('/proc'))[:3])"
    result = _run_sandboxed(tmp_path, code)
    assert result.returncode == 0, result.stderr
    assert "outside.txt" not in result.stdout
    pids = [p for p in result.stdout.split() if p.strip("[]',").isdigit()]
    assert len(pids) <= 3, result.stdout  # bwrap's init and the kernel, not the host's processes


def test_sandbox_says_how_to_get_it_when_bwrap_is_missing(monkeypatch) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.available.cache_clear()
    try:
        assert sandbox.available() is False
        assert "apt-get install bubblewrap" in sandbox.unavailable_reason()
    finally:
        monkeypatch.undo()
        sandbox.available.cache_clear()


# collect --------------------------------------------------------------------------------------


def _course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    (root / "_grading").mkdir(parents=True)
    return root


def test_collect_finds_folders_and_zips_and_names_what_it_cannot_use(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    nb = nbformat.writes(_nb("x = 1"))
    (subs / "ann" / "deep" / "01_data").mkdir(parents=True)
    (subs / "ann" / "deep" / "01_data" / "01_data.ipynb").write_text(nb)
    (subs / "ann" / "02_baselines-Copy1.ipynb").write_text(nb)
    (subs / "bob").mkdir()
    (subs / "bob" / "notes.txt").write_text("no notebook")
    with zipfile.ZipFile(subs / "cat.zip", "w") as archive:
        archive.writestr("cat/01_data.ipynb", nb)
        archive.writestr("../../escape.ipynb", nb)
    (subs / "bad.zip").write_text("not a zip")
    (subs / "has space").mkdir()
    found, problems = collect(_course(tmp_path), subs, ["01_data", "02_baselines"])
    assert sorted((s.student, s.stage) for s in found) == [("ann", "01_data"), ("cat", "01_data")]
    text = "\n".join(problems)
    assert (
        "ann: 02_baselines-Copy1.ipynb is not a stage notebook; rename it to 02_baselines.ipynb"
        in text
    )
    assert "bob: no stage notebook found" in text
    assert "bad: bad.zip is not a readable zip file" in text
    assert "has space: not usable as a student id" in text
    assert not (tmp_path / "escape.ipynb").exists()
    for submission in found:
        assert submission.notebook.is_relative_to(tmp_path / "course" / "_grading" / "submitted")
        assert len(submission.sha256) == 64


def test_collect_rejects_a_missing_folder_with_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="one folder or .zip per student"):
        collect(_course(tmp_path), tmp_path / "nowhere", ["01_data"])


# output limits --------------------------------------------------------------------------------


def test_limit_output_size_keeps_head_and_tail_of_long_outputs() -> None:
    cell = new_code_cell("print('x')")
    cell.outputs = [
        new_output("stream", name="stdout", text="a" * 50 + "b" * 50),
        new_output("execute_result", data={"text/plain": "short"}, execution_count=1),
    ]
    limiter = LimitOutputSize(max_chars=20)
    out, _ = limiter.preprocess_cell(cell, {}, 0)
    text = out.outputs[0].text
    assert text.startswith("a" * 10) and text.endswith("b" * 10)
    assert "80 characters of output removed" in text
    assert out.outputs[1].data["text/plain"] == "short"


def test_collect_refuses_to_read_from_its_own_output_folder(tmp_path: Path) -> None:
    root = _course(tmp_path)
    (root / "_grading" / "submitted").mkdir()
    with pytest.raises(ValueError, match="inside _grading/.*nbgrader collect"):
        collect(root, root / "_grading" / "submitted", ["01_data"])


def test_feedback_tracebacks_of_hidden_tests_keep_only_the_verdict() -> None:
    from course_utils.grading.preprocessors import HideHiddenTestCode

    source = "check(f).require()\n### BEGIN HIDDEN TESTS\n_checks.check(f, hidden=True).require()"
    cell = new_code_cell(source)
    error = new_output(
        "error", ename="AssertionError", evalue="FAIL f: 3 != 4", traceback=[source, "frame"]
    )
    cell.outputs = [error]
    visible = new_code_cell("check(f).require()")
    visible.outputs = [error.copy()]
    HideHiddenTestCode().preprocess_cell(cell, {}, 0)
    HideHiddenTestCode().preprocess_cell(visible, {}, 1)
    assert cell.outputs[0].traceback == ["AssertionError: FAIL f: 3 != 4"]
    assert visible.outputs[0].traceback == [source, "frame"]


def test_stop_all_kills_running_grading_processes(tmp_path: Path) -> None:
    """Ctrl-C during `course grade` must not wait for notebooks in their own sessions to finish."""
    import threading
    import time

    from course_utils.grading import worker

    results = []
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)"
    )
    thread = threading.Thread(
        target=lambda: results.append(worker.run_python(tmp_path, "-c", code, env={}, timeout=120))
    )
    start = time.perf_counter()
    thread.start()
    while not worker._LIVE and time.perf_counter() - start < 10:
        time.sleep(0.05)
    worker.stop_all()
    thread.join(timeout=20)
    assert not thread.is_alive() and time.perf_counter() - start < 20
    returncode, _ = results[0]
    assert returncode is not None and returncode < 0  # killed by a signal, not timed out


def test_audit_is_safe_to_run_from_several_grading_workers_at_once() -> None:
    """CPython 3.11's ast.parse fails ("AST constructor recursion depth mismatch") when threads
    parse at the same time; the grading workers audit in threads."""
    from concurrent.futures import ThreadPoolExecutor

    notebooks = [nbformat.read(p, as_version=4) for p in sorted(REPO.glob("solutions/*/*.ipynb"))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(audit_notebook, notebooks * 6))
    assert results == [[]] * len(results)


# memory limit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4G", 4 * 2**30),
        ("512M", 512 * 2**20),
        ("1.5GiB", 3 * 2**29),
        ("2gb", 2 * 2**30),
        ("1073741824", 2**30),
        ("none", None),
        ("0", None),
    ],
)
def test_parse_size_reads_binary_sizes(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "match"), [("4Q", "like 4G, 512M"), ("-1G", "like 4G"), ("100M", "below 256M")]
)
def test_parse_size_says_what_it_expected(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_size(text)


def test_out_of_memory_errors_are_recognised_from_python_and_torch() -> None:
    assert is_out_of_memory("MemoryError", "")
    torch_message = (
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 3221225472 bytes. Error code 12 (Cannot allocate memory)"
    )
    assert is_out_of_memory("RuntimeError", torch_message)
    assert not is_out_of_memory("RuntimeError", "mat1 and mat2 shapes cannot be multiplied")
    assert describe(2 * 2**30) == "2 GiB" and describe(3 * 2**29) == "1.5 GiB"


CAPPED_PARENT = """\
import subprocess, sys
from course_utils.grading.memory import cap_memory

assert cap_memory(2**30) is None
subprocess.run([sys.executable, sys.argv[1]], check=True)
try:
    bytearray(2 * 2**30)
except MemoryError:
    print("parent: MemoryError")
"""
CHILD = """\
import torch

try:
    torch.ones(2**29)
except RuntimeError as error:
    print("child:", error)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA is enforced on Linux")
def test_memory_cap_makes_a_large_allocation_fail_in_the_capped_process_and_its_children(
    tmp_path: Path,
) -> None:
    """The grading job caps itself; the kernel it starts (a child) inherits the cap."""
    parent, child = tmp_path / "parent.py", tmp_path / "child.py"
    parent.write_text(CAPPED_PARENT)
    child.write_text(CHILD)
    run = subprocess.run(
        [sys.executable, str(parent), str(child)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "parent: MemoryError" in run.stdout
    assert "child:" in run.stdout and is_out_of_memory("RuntimeError", run.stdout)
