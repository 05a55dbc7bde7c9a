"""How the suite spreads over pytest-xdist workers (``make test``: ``-n 2 --dist loadgroup``).

A fixture wider than one test (the hostile batch, a graded class, a database server) is built once per
worker that runs a test using it. Tests linked through such fixtures therefore form one group, which one
worker runs whole; every other test is scheduled on its own. Slow tests go first, so that no
minutes-long test starts last while the other worker idles.

xdist's own ``loadgroup`` cannot carry the groups with pytest >= 9: it renames ``item._nodeid``, which
pytest 9 no longer reads (``nodeid`` comes from ``item._id``), so every group silently fell apart and
each worker built the hostile batch and the graded class itself. Here each worker writes its
``nodeid -> group`` map into a folder the controller names (``pytest_configure_node``), and
:class:`GroupScheduling` reads it when it cuts the collection into work units.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

# Session fixtures so cheap that building one per worker costs nothing.
CHEAP_SHARED_FIXTURES = {"repo_root", "_private_jupyter_config"}


def _shared_fixture_keys(item: pytest.Item) -> list[str]:
    """The suite's own fixtures wider than one test that ``item`` uses (module, class, package or
    session scope), each named once per instance: a module fixture once per file, a session one once.
    pytest's and plugins' fixtures (defined outside the suite's folder, or in site-packages) are
    cheap and left out."""
    keys = []
    root = item.config.rootpath
    for name, defs in item._fixtureinfo.name2fixturedefs.items():
        fixture = defs[-1]
        source = Path(inspect.getsourcefile(fixture.func) or "/").resolve()
        ours = root in source.parents and "site-packages" not in source.parts
        if fixture.scope == "function" or not ours or name in CHEAP_SHARED_FIXTURES:
            continue
        keys.append(name if fixture.scope == "session" else f"{item.path.stem}.{name}")
    return sorted(keys)


def group_and_order(items: list[pytest.Item]) -> dict[str, str]:
    """Tests that share an expensive fixture (the hostile batch, a graded class, a database server)
    form one xdist group, so that one worker builds it once (``--dist loadgroup``); slow tests come
    first, so that no minutes-long test is left for the end while the other worker idles."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    keys = {item.nodeid: _shared_fixture_keys(item) for item in items}
    for item_keys in keys.values():  # union-find: tests linked through any shared fixture join
        for key in item_keys[1:]:
            parent[root(key)] = root(item_keys[0])
    for item in items:
        if keys[item.nodeid]:
            item.add_marker(pytest.mark.xdist_group(root(keys[item.nodeid][0])))
    slow_first = sorted(items, key=lambda item: item.get_closest_marker("slow") is None)
    items[:] = slow_first
    return {item.nodeid: root(keys[item.nodeid][0]) for item in items if keys[item.nodeid]}


GROUPS_FOLDER = "course_worker_groups"  # the key in each worker's workerinput


def write_groups(config: pytest.Config, groups: dict[str, str]) -> None:
    """In a worker: leave this worker's ``nodeid -> group`` map where the controller reads it."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput and GROUPS_FOLDER in workerinput:
        path = os.path.join(workerinput[GROUPS_FOLDER], f"{workerinput['workerid']}.json")
        with open(path, "w") as file:
            json.dump(groups, file)


class GroupScheduling(LoadScopeScheduling):
    """``--dist loadgroup`` that works with pytest 9: a grouped test's work unit is its group, read
    from the maps the workers wrote; any other test is a unit of its own."""

    def __init__(self, config: pytest.Config, log=None, folder: str = "") -> None:
        super().__init__(config, log)
        self.folder = folder
        self.groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self.groups is None:  # every worker has collected (and written) by the first call
            self.groups = {}
            for name in sorted(os.listdir(self.folder)):
                with open(os.path.join(self.folder, name)) as file:
                    self.groups.update(json.load(file))
        group = self.groups.get(nodeid)
        return f"group:{group}" if group else nodeid


def _groups_folder(config: pytest.Config) -> str:
    if not hasattr(config, "_course_groups_folder"):
        config._course_groups_folder = tempfile.mkdtemp(prefix="worker-groups-")
    return config._course_groups_folder


# The hooks; tests/conftest.py imports them.
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    write_groups(config, group_and_order(items))


def pytest_configure_node(node: Any) -> None:
    """In the xdist controller, for each worker: the folder it writes its groups into."""
    node.workerinput[GROUPS_FOLDER] = _groups_folder(node.config)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    return GroupScheduling(config, log, folder=_groups_folder(config))
