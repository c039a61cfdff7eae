"""The ``Examples:`` of the core docstrings are executed (doctest), so an example that is wrong fails the suite.

Their expected values were computed independently (``torch.nn.functional`` in float64, or by hand
where a comment gives the arithmetic), not copied from polyloss's output.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from polyloss.core import CORE_HELPERS, CORE_LOSSES, FAMILIES
from polyloss.verify.docs import family_page

FLAGSHIPS = ("cross_entropy", "bce_with_logits", "focal", "huber", "kl_div", "triplet", "infonce", "dice", "box_giou")
FUNCTIONS = {**CORE_LOSSES, **CORE_HELPERS}


def _tests(family: str) -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(recurse=False)
    module = importlib.import_module(f"polyloss.core.{family}")
    tests = finder.find(module, module.__name__, globs={})
    for name, fn in FUNCTIONS.items():
        if fn.family == family:
            tests += finder.find(fn, f"{module.__name__}.{name}", module=False, globs={})
    return [test for test in tests if test.examples]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_docstring_examples_run(family):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in _tests(family):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} docstring examples of {family} failed"


def test_the_flagship_losses_have_examples():
    named = {test.name.rsplit(".", 1)[-1] for family in FAMILIES for test in _tests(family)}
    assert set(FLAGSHIPS) <= named, set(FLAGSHIPS) - named
    for name in FLAGSHIPS:
        assert "\n    Examples:\n" in (FUNCTIONS[name].__doc__ or ""), name


def test_the_generated_docs_render_the_examples_as_code():
    for name in FLAGSHIPS:
        page = family_page(FUNCTIONS[name].family)
        section = page[page.index(f"## `{name}`") :]
        block = section[section.index("**Examples:**\n\n```pycon\n") : section.index("**Checked by")]
        assert f">>> round(float(pl.{name}(" in block, name
        assert block.rstrip().endswith("```"), name
