"""The documentation site: every code block of every page is run, as a user runs it; the site builds
strictly (Sphinx ``-W``: a broken link, an unknown directive or a bad docstring fails it); every loss
has a plot drawn from the code; and a family page, opened in headless Chromium, shows rendered
formulas and loaded plots.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from polyloss.core import CORE_LOSSES
from polyloss.verify.markdown import docstring_to_markdown
from polyloss.verify.plots import COMPARISONS, comparison_curves, loss_curves, plot_of
from polyloss.verify.specs import SPECS

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\S*)\n(.*?)^```\n", flags=re.M | re.S)

#: pages whose python blocks this module runs as one script, in a fresh interpreter outside the
#: repository (no conftest: the library's and hypothesis' defaults, as a user has them)
SCRIPT_PAGES = ("getting-started.md", "testing.md")
#: pages whose python blocks other tests execute (each against independent code), and where
EXECUTED_ELSEWHERE = {
    "README.md": "test_structure.py",
    "docs/recipes.md": "test_recipes.py",
    "docs/distributed.md": "test_distributed_contrastive.py",
    "docs/post-training.md": "test_post_training.py",
    "docs/architecture.md": "test_adding_a_loss.py",
}


def _blocks(page: Path) -> list[tuple[str, str]]:
    """The fenced blocks of ``page`` as (language, text)."""
    return FENCE.findall(page.read_text())


def _script_and_output(page: Path) -> tuple[str, str]:
    """The page's python blocks as one script, and the output it shows: the ``text`` blocks that
    follow python blocks."""
    blocks = _blocks(page)
    script = "\n\n".join(text for lang, text in blocks if lang == "python")
    shown = [text for (prev, _), (lang, text) in itertools.pairwise(blocks) if lang == "text" and prev == "python"]
    return script, "".join(shown)


def _user_env() -> dict[str, str]:
    """The environment without the test-suite's settings (hypothesis profile, JAX flags)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPOTHESIS", "XLA_", "JAX_", "POLYLOSS_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


# -- every block runs ---------------------------------------------------------------------


def test_every_page_with_code_is_run_by_a_test():
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    for page in pages:
        key = str(page.relative_to(ROOT))
        if not any(lang == "python" for lang, _ in _blocks(page)):
            continue
        if page.name in SCRIPT_PAGES and page.parent == DOCS:
            continue
        assert key in EXECUTED_ELSEWHERE, f"{key} has python blocks that no test runs"
        test_file = (ROOT / "tests" / EXECUTED_ELSEWHERE[key]).read_text()
        assert page.name in test_file, f"{EXECUTED_ELSEWHERE[key]} does not read {key}"


def test_the_loss_pages_hold_only_signatures_and_doctests():
    """A family page's python blocks are the generated signature lines (valid Python once given a
    body); its examples are ``pycon`` doctests, run by test_docstring_examples."""
    for page in sorted((DOCS / "losses").glob("*.md")):
        for lang, text in _blocks(page):
            assert lang in ("python", "pycon", "math"), (page.name, lang)
            if lang == "python":
                name = text.split("(", 1)[0]
                assert name in CORE_LOSSES or text.count("\n") == 1, (page.name, text)
                compile(f"from __future__ import annotations\ndef {text.strip()}: ...\n", page.name, "exec")


@pytest.mark.parametrize("page", SCRIPT_PAGES)
def test_the_page_runs_as_a_user_runs_it(page, tmp_path):
    """The page's python blocks, in order, as one script: it runs and prints what the page shows;
    if it defines tests, pytest runs them with hypothesis' default settings."""
    script, shown = _script_and_output(DOCS / page)
    path = tmp_path / f"test_{page.removesuffix('.md').replace('-', '_')}.py"
    path.write_text(script)
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, env=_user_env(), timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown, "the page shows output its code does not print"
    if re.search(r"^def test_", script, flags=re.M):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=_user_env(),
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout


# -- the docstrings as Markdown -----------------------------------------------------------


def test_the_docstring_syntax_becomes_markdown():
    doc = (
        "Summary with :math:`a_i` and ``code``, a role across\n"
        "a line :math:`x +\n  y` and :func:`mse`.\n"
        "\n"
        ".. math:: \\ell = 1\n"
        "\n"
        ".. math::\n"
        "    a = b\n"
        "        - c\n"
        "\n"
        "    d = e\n"
        "\n"
        "Args:\n"
        "    pred: predictions, ``(N,)``,\n"
        "        floating.\n"
        "    **kwargs: passed on.\n"
        "\n"
        "Returns:\n"
        "    The loss."
    )
    assert docstring_to_markdown(doc).split("\n") == [
        "Summary with $a_i$ and `code`, a role across",
        "a line $x + y$ and `mse`.",
        "",
        "```math",
        "\\ell = 1",
        "```",
        "",
        "```math",
        "a = b",
        "- c",
        "```",
        "",
        "```math",
        "d = e",
        "```",
        "",
        "**Args:**",
        "",
        "- `pred`: predictions, `(N,)`, floating.",
        "- `\\*\\*kwargs`: passed on.",
        "",
        "**Returns:**",
        "",
        "The loss.",
    ]


# -- the plots ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SPECS))
def test_every_loss_has_a_finite_plot(name):
    """The curves are finite over the whole span, and the swept hyper-parameter changes them."""
    curves = loss_curves(name)
    for curve in curves:
        assert np.isfinite(curve.value).all() and np.isfinite(curve.derivative).all(), (name, curve.label)
        assert np.ptp(curve.value) > 0, f"{name}: the loss is constant along {plot_of(name).axis!r}"
    for a, b in itertools.pairwise(curves):
        assert not np.allclose(a.value, b.value), f"{name}: {a.label} and {b.label} draw the same curve"


@pytest.mark.parametrize("comparison", COMPARISONS, ids=[c.slug for c in COMPARISONS])
def test_comparisons_share_an_axis_and_differ(comparison):
    curves = comparison_curves(comparison)  # raises when the losses' axes differ
    assert all(SPECS[name].family == comparison.family for _, name, _ in comparison.curves)
    for a, b in itertools.pairwise(curves):
        assert not np.allclose(a.value, b.value), (a.label, b.label)


# -- the site -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once, strictly (warnings are errors), from a copy of docs/ (the build writes
    its plots beside the pages)."""
    source = tmp_path_factory.mktemp("docs")
    shutil.copytree(DOCS, source, dirs_exist_ok=True, ignore=shutil.ignore_patterns("_build", "_plots"))
    (source.parent / "benchmarks").mkdir(exist_ok=True)
    shutil.copy(ROOT / "benchmarks" / "README.md", source.parent / "benchmarks" / "README.md")
    out = tmp_path_factory.mktemp("html")
    env = {**_user_env(), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(source), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_site_has_a_page_per_family_and_the_api(site):
    families = {fn.family for fn in CORE_LOSSES.values()}
    for family in families:
        assert (site / "losses" / f"{family}.html").is_file(), family
    api = (site / "api.html").read_text()
    for name in CORE_LOSSES:
        assert f'id="polyloss.torch.{name}"' in api, name
    assert (site / "searchindex.js").is_file()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(site) -> Iterator[str]:
    """The built site on 127.0.0.1 (a browser loads MathJax's scripts and fonts over HTTP)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join(timeout=10)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the browser check needs Chromium (Debian: apt-get install chromium)"
    return path


def test_a_family_page_renders_formulas_and_plots_in_a_browser(served):
    from playwright.sync_api import sync_playwright

    family = "classification"
    losses = [name for name, fn in CORE_LOSSES.items() if fn.family == family]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page()
            page.goto(f"{served}/losses/{family}.html", wait_until="load", timeout=60_000)
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60_000)
            page.evaluate("() => MathJax.startup.promise")
            rendered = page.evaluate("() => document.querySelectorAll('mjx-container').length")
            text = page.evaluate("() => document.querySelector('article').innerText")
            images = page.evaluate(
                "() => Array.from(document.querySelectorAll('article img'))"
                ".map(i => [i.src, i.complete && i.naturalWidth > 0])"
            )
        finally:
            browser.close()
    assert rendered > 2 * len(losses), f"only {rendered} formulas rendered"
    for raw in ("\\frac", "\\ell", ".. math::", ":math:", "$$", "```"):
        assert raw not in text, f"raw {raw!r} on the rendered page"
    plotted = {Path(src).stem for src, _ in images}
    assert set(losses) <= plotted, sorted(set(losses) - plotted)
    assert any(stem.startswith("compare-") for stem in plotted)
    assert all(loaded for _, loaded in images), [src for src, loaded in images if not loaded]
