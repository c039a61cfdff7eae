"""docs/index.md's loss list is generated (``polyloss.verify.docs.index_page``) and committed up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyloss.__main__ import main
from polyloss.core import CORE_HELPERS, CORE_LOSSES, FAMILIES
from polyloss.verify.docs import INDEX_BEGIN, INDEX_END, index_loss_list, index_page

INDEX = Path(__file__).resolve().parent.parent / "docs" / "index.md"


def test_the_committed_index_lists_the_registered_losses():
    text = INDEX.read_text()
    assert text == index_page(text), "run `python -m polyloss docs` and commit docs/index.md"


def test_the_list_names_every_loss_and_helper_once_under_its_family():
    lines = index_loss_list().splitlines()
    assert len(lines) == len(FAMILIES)
    for family, line in zip(FAMILIES, lines, strict=True):
        assert line.startswith(f"- [losses/{family}.md](losses/{family}.md): ")
        for name, fn in {**CORE_LOSSES, **CORE_HELPERS}.items():
            assert (f"`{name}`" in line) == (fn.family == family), (family, name)


def test_only_the_marked_block_is_rewritten():
    stale = f"before\n{INDEX_BEGIN}\n- an old line\n{INDEX_END}\nafter\n"
    assert index_page(stale) == f"before\n{INDEX_BEGIN}\n{index_loss_list()}{INDEX_END}\nafter\n"
    with pytest.raises(ValueError, match="block"):
        index_page("no markers here\n")


def test_the_docs_command_rewrites_the_index(tmp_path, capsys):
    index = tmp_path / "index.md"
    index.write_text(f"# x\n{INDEX_BEGIN}\n- stale\n{INDEX_END}\n")
    assert main(["docs", "--out", str(tmp_path / "losses"), "--index", str(index)]) == 0
    assert index.read_text() == f"# x\n{INDEX_BEGIN}\n{index_loss_list()}{INDEX_END}\n"
    assert (tmp_path / "losses" / "regression.md").exists()
    assert f"wrote the loss list of {index}" in capsys.readouterr().out
