"""Every example in the packages' docstrings runs and prints what it says (the docs are code).

The overlay's modules connect to an X server when imported, so they run under Xvfb; a module
that needs an optional extra that is not installed is skipped, as in test_layering.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

from tests.test_layering import OPTIONAL, PACKAGES

#: Modules that open a display when imported (pyglet.gl at module level).
NEEDS_DISPLAY = ("companion.overlay.render", "companion.overlay.window")


def _modules() -> list[str]:
    names = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        names.append(top)
        names += [info.name for info in pkgutil.walk_packages(package.__path__, top + ".")
                  if not info.name.endswith(".__main__")]
    return names


MODULES = _modules()


def test_the_examples_are_found():
    examples = 0
    for name in ("analyzer.onsets", "analyzer.beats", "analyzer.notes", "analyzer.charting",
                 "chart_store.chart"):
        tests = doctest.DocTestFinder().find(importlib.import_module(name))
        examples += sum(len(t.examples) for t in tests)
    assert examples >= 20


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xvfb) if n in NEEDS_DISPLAY
                                  else n for n in MODULES])
def test_docstring_examples_run(name, request):
    if name in NEEDS_DISPLAY:
        request.getfixturevalue("xvfb")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] in OPTIONAL:
            pytest.skip(f"needs the optional {error.name}")
        raise
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    failures = []
    for test in doctest.DocTestFinder().find(module, name):
        result = runner.run(test, out=failures.append)
        assert result.failed == 0, "".join(failures)
