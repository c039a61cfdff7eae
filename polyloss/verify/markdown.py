r"""The docstrings' reStructuredText, as Markdown that GitHub and the docs site (MyST) both render.

The docstrings stay in the syntax of ``help()``, Sphinx and napoleon (Google-style sections,
``.. math::`` blocks, ``:math:`` roles, double-backquoted code), as numpy's and optax's do; the
generated family pages translate the few constructs they use, once, here:

* a ``.. math::`` block (or one-line ``.. math:: expr``) becomes fenced ``math`` blocks, one per
  equation (GitHub renders them, and the site's MyST reads them as its ``math`` directive: inside a
  fence no line is taken for Markdown, as a ``- x`` line of a ``$$`` block would be);
* ``:math:`x``` becomes ``$x$``; ``:func:``, ``:class:``, ``:meth:``, ``:data:`` and double
  backquotes become code;
* ``Args:``, ``Attributes:``, ``Returns:`` and ``Raises:`` sections become a bold heading and a list
  (one item per argument) or a paragraph.

Anything else passes through (Markdown lists written with ``*`` read the same in both).
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:func|class|meth|data|mod|attr):`~?([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_LITERAL = re.compile(r"``([^`]+?)``")
_SECTION = re.compile(r"^(Args|Attributes|Returns|Raises|Note|Notes|References):\s*$")
_ITEM = re.compile(r"^(\*{0,2}[A-Za-z_][A-Za-z0-9_]*)(\s*\([^)]*\))?:\s*(.*)$")


def inline(text: str) -> str:
    """The inline roles of one line or paragraph, as Markdown."""
    text = _MATH_ROLE.sub(lambda m: "$" + " ".join(m.group(1).split()) + "$", text)
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], start: int, indent: int) -> int:
    """The end of the block of lines indented deeper than ``indent`` (blank lines inside included)."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _dedent(lines: list[str]) -> list[str]:
    depth = min((_indent(line) for line in lines if line.strip()), default=0)
    return [line[depth:] for line in lines]


def _math(first: str, body: list[str]) -> list[str]:
    """Display equations: ``first`` (the text after ``.. math::``) and the indented ``body``; blank lines
    separate equations, as in reStructuredText."""
    # leading spaces are nothing to TeX, and in Markdown they could start a code block
    lines = ([first] if first else []) + [line.strip() for line in body]
    out: list[str] = []
    equation: list[str] = []
    for line in [*lines, ""]:
        if line:
            equation.append(line)
        elif equation:
            out += [*([""] if out else []), "```math", *equation, "```"]
            equation = []
    return out


def _section(name: str, body: list[str]) -> list[str]:
    """``Args:`` and ``Attributes:`` as a list (an item per name, its continuation lines joined), the
    others as a paragraph."""
    body = _dedent(body)
    out = [f"**{name}:**", ""]
    if name not in ("Args", "Attributes"):
        return out + inline("\n".join(body)).split("\n")
    items: list[list[str]] = []
    for line in body:
        match = _ITEM.match(line) if _indent(line) == 0 else None
        if match:
            label = match.group(1).replace("*", r"\*")
            items.append([f"- `{label}`{match.group(2) or ''}: {match.group(3)}".rstrip()])
        elif line.strip() and items:
            items[-1].append(line.strip())
    return out + [inline(" ".join(item)) for item in items]


def docstring_to_markdown(text: str) -> str:
    """``text`` (a cleaned docstring, see ``inspect.cleandoc``) as Markdown."""
    lines = text.splitlines()
    out: list[str] = []
    paragraph: list[str] = []  # plain lines, translated together (a role may span a line break)

    def flush() -> None:
        if paragraph:
            out.extend(inline("\n".join(paragraph)).split("\n"))
        paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(".. math::"):
            flush()
            end = _block(lines, i + 1, _indent(line))
            out += _math(stripped[len(".. math::") :].strip(), lines[i + 1 : end])
            i = end
            continue
        section = _SECTION.match(line)
        if section:
            flush()
            end = _block(lines, i + 1, 0)
            out += _section(section.group(1), lines[i + 1 : end])
            i = end
            continue
        paragraph.append(line)
        i += 1
    flush()
    return "\n".join(out)
