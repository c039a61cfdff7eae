"""``python -m polyloss``: runs outside pytest and degrades to a clear line when a framework is missing."""

from __future__ import annotations

import json
import os
import re
import subprocess

from helpers import run_python

from polyloss.verify.specs import SPECS


def _run(*args: str, hide: str | tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter; ``hide`` makes packages unimportable there."""
    hiding = "".join(f"sys.modules[{name!r}] = None; " for name in ((hide,) if isinstance(hide, str) else hide))
    code = f"import sys; {hiding}from polyloss.__main__ import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "COLUMNS": "250"}
    return run_python(code, *args, env=env)


def test_list_prints_every_loss_and_its_references():
    result = _run("list")
    assert result.returncode == 0, result.stderr
    for name in SPECS:
        assert name in result.stdout


def test_verify_writes_a_passing_json_report(tmp_path):
    """The default, quick run: every backend's float64 values, torch's finite differences, JAX under
    jax.jit against both, vmap, upstream parity; no float32, no eager JAX, no compile."""
    report = tmp_path / "report.json"
    result = _run("verify", "--loss", "mse", "--loss", "focal", "--json", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert (data["mode"], data["compile"]) == ("quick", False)
    assert set(data["losses"]) == {"mse", "focal"}
    assert data["failed_checks"] == 0
    checks = data["losses"]["focal"]["checks"]
    for key in ("value[torch]", "value[jax]", "value[array_api_strict]", "grad[torch~jax]", "fd[torch]", "vmap[jax]"):
        assert checks[key]["status"] == "pass", key
    assert not {"float32[torch]", "fd[jax]", "jit[jax]", "compile[torch]"} & set(checks)
    assert all(r["status"] == "pass" for r in data["losses"]["focal"]["references"].values())
    assert data["losses"]["focal"]["edge_cases"]["runs"] > 0
    assert f"report: {report}" in result.stdout.replace("\n", "")


def test_verify_full_adds_float32_eager_jax_and_jit(tmp_path):
    report = tmp_path / "report.json"
    result = _run("verify", "--full", "--no-compile", "--loss", "mse", "--json", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert data["mode"] == "full"
    checks = data["losses"]["mse"]["checks"]
    for key in ("float32[torch]", "float32[jax]", "fd[jax]", "jit[jax]", "vmap[torch]", "edge[float32,jit][jax]"):
        assert checks[key]["status"] == "pass", key


def test_verify_compile_without_torch_says_so_and_exits_2():
    result = _run("verify", "--loss", "mse", "--compile", hide="torch")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--compile asks for torch.compile" in result.stdout


def test_verify_without_jax_reports_it_missing_instead_of_crashing(tmp_path):
    report = tmp_path / "report.json"
    result = _run("verify", "--loss", "mse", "--json", str(report), hide="jax")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "jax not installed" in result.stdout
    data = json.loads(report.read_text())
    assert data["losses"]["mse"]["checks"]["value[jax]"]["status"] == "missing"
    assert data["losses"]["mse"]["checks"]["value[torch]"]["status"] == "pass"


def test_verify_without_torch_checks_jax_gradients_against_finite_differences(tmp_path):
    report = tmp_path / "report.json"
    result = _run("verify", "--loss", "huber", "--json", str(report), hide="torch")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = json.loads(report.read_text())["losses"]["huber"]["checks"]
    assert checks["fd[jax]"]["status"] == "pass"
    assert checks["value[jax]"]["status"] == "pass"
    assert checks["fd[torch]"]["status"] == "missing"


def test_verify_without_torch_and_jax_says_nothing_was_checked_and_exits_2():
    result = _run("verify", "--loss", "mse", hide=("jax", "torch"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "nothing to verify: neither torch nor jax is installed" in result.stdout
    assert "all checks passed" not in result.stdout


def test_verify_piped_prints_a_line_per_loss():
    result = _run("verify", "--loss", "mse", "--loss", "huber")
    assert result.returncode == 0, result.stdout + result.stderr
    for loss in ("mse", "huber"):
        assert re.search(rf"^\[[12]/2\] {loss}: \d+ checks ok \([\d.]+ s\)$", result.stdout, re.M), result.stdout


def test_verify_rejects_an_unknown_loss():
    result = _run("verify", "--loss", "nope")
    assert result.returncode == 2
    assert "nope" in result.stdout


def test_without_rich_verify_and_list_say_so_and_exit_2():
    """rich comes with the verify extra: without it the printing commands name the fix."""
    for command in ("verify", "list"):
        result = _run(command, hide="rich")
        assert result.returncode == 2, result.stdout + result.stderr
        assert 'pip install "polyloss[verify]"' in result.stdout and "rich" in result.stdout
