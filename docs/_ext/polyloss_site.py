"""What the site draws from the code when it is built: every loss's plot (its spec's ``Plot``) under
its heading on the family page, and the family's comparison plots at the top of the page
(``polyloss.verify.plots``). The pictures go to ``docs/_plots/`` (not committed); the Markdown pages
stay as ``python -m polyloss docs`` writes them, so that GitHub shows them without broken images."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

from polyloss.verify.plots import Drawn, draw_all

_DRAWN: dict[str, Drawn] = {}
_HEADING = re.compile(r"^## `(\w+)`\n\n```python\n.*?\n```\n", flags=re.M | re.S)


def _draw(app: Sphinx) -> None:
    _DRAWN["site"] = draw_all(Path(app.srcdir) / "_plots")


def _figure(path: Path, alt: str) -> str:
    return f"![{alt}](../_plots/{path.name})\n"


def _insert_plots(app: Sphinx, docname: str, source: list[str]) -> None:
    if not docname.startswith("losses/"):
        return
    drawn, family = _DRAWN["site"], docname.removeprefix("losses/")

    def with_plot(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in drawn.losses:
            return match.group(0)
        return f"{match.group(0)}\n{_figure(drawn.losses[name], f'{name} and its derivative')}"

    text = _HEADING.sub(with_plot, source[0])
    comparisons = drawn.comparisons.get(family, [])
    if comparisons:
        first = text.index("\n## `")
        figures = "".join(f"\n### {c.title}\n\n{_figure(path, c.title)}" for c, path in comparisons)
        text = f"{text[:first]}\n\n## Compared\n{figures}{text[first:]}"
    source[0] = text


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _draw)
    app.connect("source-read", _insert_plots)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
