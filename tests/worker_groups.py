"""How the suite spreads over pytest-xdist workers (``make test``: ``-n 2 --dist loadgroup``).

A fixture wider than one test (the hostile batch, a graded class, a database server) is built once per
worker that runs a test using it. Tests linked through such fixtures therefore form one xdist group,
which one worker runs whole; every other test is scheduled on its own. Slow tests go first, so that
no minutes-long test starts last while the other worker idles.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

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


def group_and_order(items: list[pytest.Item]) -> None:
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
