"""Types the checker sees: the namespaces' stubs match the code, and ``mypy --strict`` passes a
user's script (``examples/typed_usage.py``) and reports every deliberate mistake of
``examples/typed_mistakes.py`` (each marked ``# error: <code>``), and nothing else."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import polyloss.jax
import polyloss.numpy
import polyloss.torch
from polyloss.verify.stubs import namespace_stub, nn_stub, stub_path

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
NAMESPACES = {"torch": polyloss.torch, "jax": polyloss.jax, "numpy": polyloss.numpy}


@pytest.mark.parametrize("namespace", list(NAMESPACES))
def test_the_stub_is_generated_from_the_code(namespace):
    assert stub_path(namespace).read_text() == namespace_stub(namespace), (
        "run `python -m polyloss docs` and commit polyloss/*.pyi"
    )


def test_the_nn_stub_is_generated_from_the_code():
    assert (ROOT / "polyloss" / "torch" / "nn.pyi").read_text() == nn_stub(), "run `python -m polyloss docs`"


@pytest.mark.parametrize("namespace", list(NAMESPACES))
def test_the_stub_declares_what_the_namespace_exports(namespace):
    declared = re.findall(r"^def (\w+)\(", namespace_stub(namespace), re.M)
    assert sorted(declared) == sorted(NAMESPACES[namespace].__all__)


@pytest.fixture(scope="module")
def mypy_errors() -> dict[str, dict[int, set[str]]]:
    """``mypy --strict`` on both example files: per file, the error codes reported on each line."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--show-error-codes", "--no-error-summary", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors: dict[str, dict[int, set[str]]] = {"typed_usage.py": {}, "typed_mistakes.py": {}}
    for path, line, code in re.findall(r"^examples/(\w+\.py):(\d+): error: .*\[([\w-]+)\]$", result.stdout, re.M):
        errors[path].setdefault(int(line), set()).add(code)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return errors


def test_a_users_script_type_checks_under_strict(mypy_errors):
    assert mypy_errors["typed_usage.py"] == {}


def test_every_deliberate_mistake_is_reported_and_nothing_else(mypy_errors):
    lines = (EXAMPLES / "typed_mistakes.py").read_text().splitlines()
    expected = {i: m.group(1) for i, text in enumerate(lines, 1) if (m := re.search(r"# error: ([\w-]+)$", text))}
    assert len(expected) >= 8
    reported = mypy_errors["typed_mistakes.py"]
    assert set(reported) == set(expected), (reported, expected)
    for line, code in expected.items():
        assert code in reported[line], (line, code, reported[line])
