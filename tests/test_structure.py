"""The layering, the catalogue and the docs: structural guarantees."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_python_succeeds, run_python

import polyloss.jax
import polyloss.numpy
import polyloss.torch
from polyloss.core import CORE_HELPERS, CORE_LOSSES, FAMILIES
from polyloss.verify.docs import family_page
from polyloss.verify.specs import SPECS
from polyloss.verify.specs.edges import EMPTY_BATCH, Finite, no_empty_batch_reasons

PACKAGE = Path(polyloss.numpy.__file__).parent
FRAMEWORKS = {"torch", "jax", "jaxlib", "optax", "torchvision", "flax"}
NAMESPACES = {"numpy": polyloss.numpy, "torch": polyloss.torch, "jax": polyloss.jax}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", ["core", "specs"])
def test_core_and_specs_import_no_framework(layer):
    offenders = {str(p.relative_to(PACKAGE)): _imports(p) & FRAMEWORKS for p in (PACKAGE / layer).rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}, offenders


def test_only_framework_modules_import_their_framework():
    allowed = {
        "backends/torch.py": {"torch"},
        "backends/jax.py": {"jax"},
        "torch/nn.py": {"torch"},  # the nn.Module classes: a public namespace of torch's own kind
        "verify/harness/torch.py": {"torch"},
        "verify/harness/jax.py": {"jax", "optax"},
    }
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(PACKAGE))
        used = _imports(path) & FRAMEWORKS
        assert used <= allowed.get(rel, set()), f"{rel} imports {used}"


def test_import_polyloss_imports_neither_torch_nor_jax():
    code = (
        "import sys, polyloss, polyloss.core, polyloss.verify.specs, polyloss.numpy, polyloss.verify.checks;"
        "bad = sorted(m for m in ('torch', 'jax', 'optax') if m in sys.modules); print(bad); sys.exit(bool(bad))"
    )
    assert_python_succeeds(code)


@pytest.mark.parametrize("namespace", ["numpy", "torch", "jax"])
def test_namespaces_import_nothing_of_the_proof(namespace):
    """The runtime import graph: a public namespace loads no module of polyloss.verify (the harness
    included), nor optax, hypothesis or rich."""
    code = (
        f"import sys, polyloss.{namespace}; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('optax', 'hypothesis', 'rich') "
        "or m == 'polyloss.verify' or m.startswith('polyloss.verify.')); print(bad); sys.exit(bool(bad))"
    )
    assert_python_succeeds(code)


def test_public_api_leaves_jax_float64_mode_alone():
    """Importing polyloss.jax, calling a loss and a polyloss.testing check leave jax_enable_x64 as it
    was (the checks switch it on for their own runs only)."""
    code = (
        "import sys, jax, numpy as np, torch, polyloss.jax, polyloss.testing as t\n"
        "x, y = np.array([[0.5, -1.0, 2.0]]), np.array([2])\n"
        "polyloss.jax.focal(jax.numpy.asarray(x), jax.numpy.asarray(y))\n"
        "before = jax.config.read('jax_enable_x64')\n"
        "t.assert_loss_agrees('focal', x, y)  # float64 tolerances: JAX ran in float64\n"
        "after = jax.config.read('jax_enable_x64')\n"
        "sys.exit(f'jax_enable_x64: {before} after import and a loss, {after} after a check' if before or after else 0)"
    )
    assert_python_succeeds(code)


def test_framework_namespaces_import_their_framework_only():
    for name, other in (("torch", "jax"), ("jax", "torch")):
        code = f"import sys, polyloss.{name}; assert '{name}' in sys.modules; sys.exit('{other}' in sys.modules)"
        result = run_python(code)
        assert result.returncode == 0, f"polyloss.{name} imported {other}: {result.stderr}"


def test_every_namespace_exposes_the_same_losses():
    expected = set(CORE_LOSSES) | set(CORE_HELPERS)
    autodiff_only = {name for name, fn in CORE_LOSSES.items() if fn.needs_autodiff}
    assert autodiff_only == {"gradient_penalty"}
    for backend, module in NAMESPACES.items():
        want = expected - autodiff_only if backend == "numpy" else expected
        assert set(module.__all__) == want, (backend, set(module.__all__) ^ want)
        assert all(callable(getattr(module, name)) for name in module.__all__)


def test_every_loss_has_a_spec_and_every_spec_a_loss():
    assert set(SPECS) == set(CORE_LOSSES)
    for name, spec in SPECS.items():
        assert spec.family == CORE_LOSSES[name].family
        assert spec.family in FAMILIES
        assert spec.variants, name
        for input_name, reason in spec.not_differentiable.items():  # a stated reason for each exclusion
            assert reason.strip(), (name, input_name)
        case = spec.variants[0].make(np.random.default_rng(0), 3)
        assert spec.differentiable_in(case), name
        inputs = {n for v in spec.variants for n in v.make(np.random.default_rng(0), 3).arrays}
        assert set(spec.not_differentiable) <= inputs, (name, set(spec.not_differentiable) - inputs)
        for reference in spec.references:
            assert set(reference.grads_of or ()) <= inputs, (name, reference.name)


@pytest.mark.parametrize("name", sorted(CORE_LOSSES))
def test_every_loss_states_the_empty_batch_policy(name):
    """One empty-batch edge case per reduction (docs/index.md's policy), or a stated reason why the loss
    has no batch: a new loss cannot forget the batch of zero samples."""
    spec = SPECS[name]
    cases = [e for e in spec.edge_cases if e.name.startswith(EMPTY_BATCH)]
    reason = no_empty_batch_reasons().get(name)
    if reason is not None:
        assert not cases and reason.strip(), f"{name}: a reason and empty-batch cases"
        return
    assert sorted(e.reduction for e in cases) == sorted(spec.reductions), f"{name}: one case per reduction"
    for e in cases:
        assert any(0 in np.shape(a) for a in e.arrays.values()), f"{name}: {e.name} has no empty input"
        assert isinstance(e.expect, Finite) and e.expect.grad == "zero", f"{name}: {e.name}"
        if e.reduction == "none":
            assert e.expect.shape is not None and 0 in e.expect.shape, f"{name}: {e.name}"
        else:
            assert e.expect.value == 0.0 and e.expect.shape == (), f"{name}: {e.name}"


def test_declared_empty_batch_exceptions_are_losses():
    assert set(no_empty_batch_reasons()) <= set(SPECS)


@pytest.mark.parametrize("name", sorted(CORE_LOSSES))
def test_public_signature_conventions(name):
    """Arrays positional, hyper-parameters keyword-only, reduction="mean" last, docstring maths-first."""
    fn = getattr(polyloss.torch, name)
    params = list(inspect.signature(fn).parameters.values())
    assert params[-1].name == "reduction" and params[-1].kind is inspect.Parameter.KEYWORD_ONLY
    assert params[-1].default in ("mean", "sum")
    positional = [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    # optional arrays (distillation's target) default to None and come after the required ones
    defaults = [p.default is not inspect.Parameter.empty for p in positional]
    assert defaults == sorted(defaults), name
    assert all(p.default is None for p in positional if p.default is not inspect.Parameter.empty), name
    for p in params:
        if p.name == "axis":
            assert p.default == -1 and p.kind is inspect.Parameter.KEYWORD_ONLY
    doc = fn.__doc__ or ""
    assert ".. math::" in doc and "Args:" in doc and "Returns:" in doc, name
    assert fn.__module__ == "polyloss.torch" and fn.__name__ == name


def test_no_source_or_page_holds_a_control_character():
    """A docstring written through a non-raw string loses its backslashes: ``\\bigl`` becomes a
    backspace, ``\\frac`` a form feed, ``\\\\`` one backslash. Formulas must reach users intact."""
    root = Path(__file__).parents[1]
    files = [
        *PACKAGE.rglob("*.py"),
        *PACKAGE.rglob("*.pyi"),
        *(root / "docs").rglob("*.md"),
        *(root / "tests").rglob("*.py"),
    ]
    for path in files:
        text = path.read_text()
        bad = sorted({hex(ord(c)) for c in text if ord(c) < 32 and c not in "\n"})
        assert not bad, f"{path.relative_to(root)} holds control characters {bad}"


@pytest.mark.parametrize("family", FAMILIES)
def test_family_docs_are_generated_from_the_code(family):
    page = Path(__file__).parents[1] / "docs" / "losses" / f"{family}.md"
    assert page.read_text() == family_page(family), "run `python -m polyloss docs` and commit docs/losses"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_signature_in_the_family_docs_is_valid_python(family):
    lines = family_page(family).splitlines()  # the committed page is this one (test above)
    names = [name for name, fn in {**CORE_LOSSES, **CORE_HELPERS}.items() if fn.family == family]
    signatures = [lines[i + 3] for i, line in enumerate(lines) if line.startswith("## `")]
    assert len(signatures) == len(names) > 0
    for name, signature in zip(names, signatures, strict=True):
        tree = ast.parse(f"def {signature}: ...")
        function = tree.body[0]
        assert isinstance(function, ast.FunctionDef) and function.name == name, signature
        parameters = list(inspect.signature({**CORE_LOSSES, **CORE_HELPERS}[name]).parameters.values())[1:]
        arguments = function.args
        documented = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        assert [a.arg for a in documented] == [p.name for p in parameters], signature
        defaults = [*arguments.defaults, *arguments.kw_defaults]
        expected = [p.default for p in parameters if p.default is not inspect.Parameter.empty]
        assert [ast.literal_eval(d) for d in defaults if d is not None] == expected, signature
        assert all(a.annotation is not None and not isinstance(a.annotation, ast.Constant) for a in documented)


def test_readme_commands_are_those_of_ci():
    root = Path(__file__).parents[1]
    readme, ci = (root / "README.md").read_text(), (root / ".ci" / "run").read_text()
    test_command = next(line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd ")))
    assert test_command in readme, "the README's test command must be exactly the one .ci/run runs"
    assert "python -m polyloss verify" in readme


def test_readme_example_runs():
    """The README's example is executed, not just shown."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(example, "README.md", "exec"), {})


@pytest.mark.parametrize("name", sorted(CORE_HELPERS))
def test_helper_conventions(name):
    """Helpers (non-loss public functions) keep the conventions except the reduction, and have no spec."""
    fn = getattr(polyloss.torch, name)
    params = list(inspect.signature(fn).parameters.values())
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params if p.default is not inspect.Parameter.empty)
    assert name not in SPECS and name not in CORE_LOSSES
    doc = fn.__doc__ or ""
    assert ".. math::" in doc and "Args:" in doc and "Returns:" in doc, name


def test_every_floating_input_is_differentiated_unless_excluded_with_a_reason():
    """Targets, soft masks and weights are differentiated by default; an exclusion (spec-wide or of a
    variant) names an input of the cases it applies to and states a reason."""
    from polyloss.verify.cases import make_cases

    for name, spec in SPECS.items():
        for index, variant in enumerate(spec.variants):
            (case,) = make_cases(spec, index, 0, 2)
            floating = {n for n, a in case.arrays.items() if np.issubdtype(a.dtype, np.floating)}
            assert set(variant.not_differentiable) <= floating, (name, variant.name)
            assert all(reason.strip() for reason in variant.not_differentiable.values()), (name, variant.name)
            excluded = set(spec.not_differentiable) | set(variant.not_differentiable)
            assert set(spec.differentiable_in(case)) == floating - excluded, (name, variant.name)
    # the target gradients issue 11 is about are checked
    for name in ("cross_entropy", "poly1", "bce_with_logits", "bce", "mse", "kl_div", "dice"):
        spec = SPECS[name]
        checked = {n for i in range(len(spec.variants)) for n in spec.differentiable_in(make_cases(spec, i, 0, 2)[0])}
        assert {"target", "p"} & checked, (name, checked)
