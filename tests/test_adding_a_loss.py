"""Adding a loss is two files: the worked example of docs/architecture.md ("Adding a loss") passes the
structural, conformance, invariance, mixed-precision, edge-case and plot tests with nothing else written.

A pytest plugin, loaded with ``-p`` in a subprocess, executes the doc's two code blocks in the namespaces of
``polyloss.core.regression`` and ``polyloss.verify.specs.regression`` (as if appended to those files) before
anything binds the namespaces; the subprocess then runs the suites on the new loss. Only the generated page
``docs/losses/regression.md`` is left out: ``python -m polyloss docs`` would regenerate it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
NAME = "welsch"

PLUGIN = """
import polyloss.core.regression as core_module
import polyloss.verify.specs.regression as spec_module

exec(compile({core!r}, "docs/architecture.md: the core block", "exec"), vars(core_module))
exec(compile({spec!r}, "docs/architecture.md: the spec block", "exec"), vars(spec_module))
"""


def _blocks() -> tuple[str, str]:
    section = ARCHITECTURE.read_text().split("## Adding a loss", 1)[1].split("\n## ", 1)[0]
    core, spec = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    assert core.startswith("# polyloss/core/regression.py") and spec.startswith("# polyloss/verify/specs/regression.py")
    return core, spec


def test_the_worked_example_needs_no_other_file(tmp_path):
    core, spec = _blocks()
    (tmp_path / "throwaway_loss.py").write_text(PLUGIN.format(core=core, spec=spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    files = [
        "tests/test_structure.py",
        "tests/test_conformance.py",
        "tests/test_invariances.py",
        "tests/test_mixed_precision.py",
        "tests/test_edge_cases.py",
        "tests/test_docs_site.py",
    ]
    selection = f"{NAME} or (test_structure and not (family_docs and regression))"
    command = [sys.executable, "-m", "pytest", "-p", "throwaway_loss", "-p", "no:cacheprovider", "-q", "-rA"]
    result = subprocess.run(
        [*command, "-k", selection, *files], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    passed = set(re.findall(r"^PASSED (.+?)\s*$", output, re.M))
    for test in [
        f"tests/test_structure.py::test_public_signature_conventions[{NAME}]",
        "tests/test_structure.py::test_every_loss_has_a_spec_and_every_spec_a_loss",
        f"tests/test_structure.py::test_every_loss_states_the_empty_batch_policy[{NAME}]",
        f"tests/test_conformance.py::test_conformance[value-torch-{NAME}]",
        f"tests/test_conformance.py::test_conformance_jax_once[fd-jax-{NAME}]",
        f"tests/test_conformance.py::test_matches_upstream_reference[{NAME}-Welsch loop]",
        f"tests/test_invariances.py::test_batch_permutation[{NAME}-torch]",
        f"tests/test_invariances.py::test_mean_is_sum_over_documented_normaliser[{NAME}-numpy]",
        f"tests/test_invariances.py::test_all_ones_weights_equal_no_weights[{NAME}-jax]",
        f"tests/test_docs_site.py::test_every_loss_has_a_finite_plot[{NAME}]",
    ]:
        assert test in passed, f"{test} did not pass:\n{output[-3000:]}"
    assert any(f"test_edge_case[{NAME}-" in test for test in passed), output[-3000:]
    # more runs than the doc's two value cases have (9 each: 7 eager, jit, compile): its empty-batch cases ran
    assert sum(f"test_edge_case[{NAME}-" in test for test in passed) > 2 * 9, output[-3000:]
    assert any(f"test_half_inputs_compute_in_float32[{NAME}" in test for test in passed), output[-3000:]
