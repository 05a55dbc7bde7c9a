"""tests/worker_groups.py: which tests share an xdist worker, and in what order they are sent."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SUITE = {
    "conftest.py": """
import pytest
from tests.worker_groups import group_and_order

@pytest.fixture(scope="session")
def server():
    return object()

@pytest.fixture(scope="session")
def repo_root():
    return "."

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: slow")

def pytest_collection_modifyitems(items):
    group_and_order(items)
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        print("ITEM", item.name, mark.args[0] if mark else "-")
""",
    "test_a.py": """
import pytest

@pytest.fixture(scope="module")
def graded(server):
    return server

@pytest.fixture(scope="module")
def table():
    return 1

def test_quick(): pass
def test_uses_graded(graded): pass
def test_uses_table(table): pass
def test_uses_root(repo_root, tmp_path_factory): pass

@pytest.mark.slow
def test_slow(): pass
""",
    "test_b.py": """
import pytest

@pytest.fixture(scope="module")
def table():
    return 2

def test_uses_server(server): pass
def test_uses_other_table(table): pass
""",
}


@pytest.fixture
def collected(pytester: pytest.Pytester) -> dict[str, str]:
    pytester.makepyfile(**{name[:-3]: text for name, text in SUITE.items()})
    run = pytester.runpytest("--collect-only", "-q", "-s", "-p", "no:cacheprovider")
    lines = [line.split()[1:] for line in run.outlines if line.startswith("ITEM ")]
    return {name: group for name, group in lines} | {"_order": " ".join(n for n, _ in lines)}


def test_tests_linked_through_a_shared_fixture_form_one_group(collected):
    # test_a's `graded` needs the session `server`: both files' users of either join one group
    assert collected["test_uses_graded"] == collected["test_uses_server"] != "-"


def test_a_module_fixture_groups_its_own_file_only(collected):
    assert collected["test_uses_table"] == "test_a.table"
    assert collected["test_uses_other_table"] == "test_b.table"


def test_cheap_and_plugin_fixtures_and_plain_tests_are_scheduled_alone(collected):
    assert collected["test_uses_root"] == collected["test_quick"] == "-"


def test_slow_tests_are_sent_first(collected):
    assert collected["_order"].split()[0] == "test_slow"


GROUPED_SUITE = {
    "conftest.py": """
import pytest
from tests.worker_groups import (
    pytest_collection_modifyitems, pytest_configure_node, pytest_xdist_make_scheduler,
)

@pytest.fixture(scope="session")
def server():
    return object()

@pytest.fixture
def record(request, worker_id, pytestconfig):
    yield
    (pytestconfig.rootpath / "ran" / request.node.name).write_text(worker_id)
""",
    **{
        f"test_part{i}.py": f"""
import time

def test_shares_{i}(server, record):
    time.sleep(0.3)  # as long as the others: ungrouped, the two workers would share these

def test_alone_{i}(record):
    time.sleep(0.3)
"""
        for i in range(6)
    },
}


def test_under_xdist_a_group_runs_on_one_worker_and_the_rest_spreads(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, repo_root
) -> None:
    """The claim `make test` rests on, under real xdist (pytest 9 ignores xdist's own renaming)."""
    monkeypatch.setenv("PYTHONPATH", str(repo_root))
    pytester.makepyfile(**{name[:-3]: text for name, text in GROUPED_SUITE.items()})
    (pytester.path / "ran").mkdir()
    run = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider")
    run.assert_outcomes(passed=12)
    ran = {path.name: path.read_text() for path in (pytester.path / "ran").iterdir()}
    assert len(ran) == 12
    assert len({w for name, w in ran.items() if name.startswith("test_shares")}) == 1, ran
    assert len({w for name, w in ran.items() if name.startswith("test_alone")}) == 2, ran
