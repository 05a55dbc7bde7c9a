"""The package's lookup: each exercise's check lives in the module named after it, and ``all_checks()`` and
``from course_utils.checks import check_x`` return those functions."""

from __future__ import annotations

import importlib

import course_utils.checks as package


def test_each_check_lives_in_the_module_named_after_its_exercise():
    assert len(package.MODULES) == 20
    for name, module_name in package.MODULES.items():
        module = importlib.import_module(f"course_utils.checks.{module_name}")
        assert name == f"check_{module_name}"
        assert [k for k in vars(module) if k.startswith("check_")] == [name]
        assert getattr(package, name) is getattr(module, name)


def test_all_checks_returns_every_check_by_name():
    found = package.all_checks()
    assert set(found) == set(package.MODULES)
    assert all(found[name] is getattr(package, name) for name in found)
