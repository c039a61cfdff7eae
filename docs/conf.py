"""The documentation site: Sphinx with MyST (the pages stay Markdown that GitHub renders too), furo,
MathJax served from the site itself (sphinx-mathjax-offline), autodoc/napoleon for the API reference,
and ``_ext/polyloss_site.py`` for what is drawn from the code (a plot of every loss and its gradient,
the families' comparison plots). Build: ``sphinx-build -W -b html docs docs/_build/html``."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).parent
sys.path[:0] = [str(DOCS / "_ext"), str(DOCS.parent)]

import polyloss  # noqa: E402  (after the path: the checkout's polyloss, not an installed one)

project = "polyloss"
author = "the polyloss developers"
copyright = "2026, the polyloss developers"
release = version = polyloss.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "polyloss_site",
]
root_doc = "index"
exclude_patterns = ["_build", "_plots", "_ext"]
# the pages' display maths are ```math fences (GitHub renders them too), inline maths $...$
myst_enable_extensions = ["dollarmath"]
myst_fence_as_directive = ["math"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "furo"
html_title = f"polyloss {release}"
html_static_path: list[str] = []

autodoc_typehints = "signature"
# the annotations as written (`Array` is the framework's array type, not `Any`)
autodoc_type_aliases = {"Array": "Array", "ProcessGroup": "ProcessGroup", "AxisName": "AxisName"}
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False
