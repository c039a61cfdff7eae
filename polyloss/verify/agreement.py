"""Agreement assertions: a torch callable and a JAX callable, or a polyloss loss across backends.

The public names are re-exported by :mod:`polyloss.testing` (see its docstring and
``docs/testing.md``). The frameworks are reached through the harnesses of
:mod:`polyloss.verify.harness` when a check first runs; JAX's float64 mode is on
during each check only, and restored after it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polyloss.verify.cases import cotangent as fixed_cotangent
from polyloss.verify.compare import compare
from polyloss.verify.environment import Environment
from polyloss.verify.harness.base import Harness
from polyloss.verify.specs import DEFAULT_TOLERANCES

#: Default ``(rtol, atol)`` per floating dtype: an element agrees when
#: ``|actual - expected| <= atol + rtol * |expected|``. float64 and float32 are the
#: conformance harness's own (``polyloss.verify.specs.DEFAULT_TOLERANCES``). float16 and
#: bfloat16 allow about ten units in the last place of a value near 1 (2**-10 and
#: 2**-7 apart there), since a loss computed in half precision rounds after every
#: operation, differently in each framework; torch.testing's single-operation
#: defaults (1e-3 and 1.6e-2) fail on a plain focal loss.
TOLERANCES: dict[str, tuple[float, float]] = {
    **DEFAULT_TOLERANCES,
    "float16": (1e-2, 1e-4),
    "bfloat16": (5e-2, 1e-3),
}

_MAX_LISTED = 8  # further disagreeing indices listed after the worst one
_ENVIRONMENT: list[Environment] = []


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Agreement:
    """What an ``assert_*`` check compared, returned when everything agreed.

    Attributes:
        dtype: the floating dtype the inputs were converted to.
        rtol: the relative tolerance used.
        atol: the absolute tolerance used.
        values: each side's output as a float64 NumPy array, by side
            (``"torch"``, ``"jax"``, and ``"numpy"`` for :func:`assert_loss_agrees`).
        grads: each autodiff side's gradients as float64 NumPy arrays, by side,
            then by input name; empty when no input was differentiated.
        abs_errors: the largest absolute difference of each compared quantity,
            by label: ``"value (jax vs torch)"``, ``"gradient w.r.t. logits
            (input 0) (jax vs torch)"``, ``"value (torch vs numpy)"``, ...
        ratios: the largest ``|actual - expected| / (atol + rtol * |expected|)``
            of each quantity (at most 1, since everything agreed).
    """

    dtype: str
    rtol: float
    atol: float
    values: dict[str, np.ndarray]
    grads: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    abs_errors: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)

    @property
    def max_abs_error(self) -> float:
        """The largest absolute difference over every compared quantity."""
        return max(self.abs_errors.values(), default=0.0)

    @property
    def max_ratio(self) -> float:
        """The largest error-to-tolerance ratio over every compared quantity (at most 1)."""
        return max(self.ratios.values(), default=0.0)


@dataclass(frozen=True)
class _Finding:
    label: str  # "value" or "gradient w.r.t. ..."
    expected_side: str
    actual_side: str
    ok: bool
    ratio: float
    abs_error: float
    lines: tuple[str, ...] = ()  # the detail of a disagreement


# --------------------------------------------------------------------------- plumbing


def _environment() -> Environment:
    """The loaded backends (torch and jax required), loaded once."""
    if not _ENVIRONMENT:
        _ENVIRONMENT.append(Environment.load())
    env = _ENVIRONMENT[0]
    missing = [env.missing[name] for name in ("torch", "jax") if name not in env.harnesses]
    if missing:
        raise ImportError(
            f"polyloss.testing needs torch and jax ({'; '.join(missing)}); install them with "
            f'pip install "polyloss[test]"'
        )
    return env


def _tolerances(
    dtype: str, rtol: float | None, atol: float | None, table: dict[str, tuple[float, float]] | None = None
) -> tuple[float, float]:
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype must be one of {sorted(TOLERANCES)}, got {dtype!r}")
    default_rtol, default_atol = (table or {}).get(dtype, TOLERANCES[dtype])
    rtol = default_rtol if rtol is None else float(rtol)
    atol = default_atol if atol is None else float(atol)
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol!r}, atol={atol!r}")
    return rtol, atol


def _as_numpy_inputs(arrays: Sequence[Any]) -> list[np.ndarray]:
    out = []
    for i, value in enumerate(arrays):
        array = np.asarray(value)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise TypeError(f"input {i} must be a numeric NumPy array (close over other arguments), got {value!r}")
        out.append(array)
    return out


def _is_floating(array: np.ndarray) -> bool:
    return bool(np.issubdtype(array.dtype, np.floating))


def _convert(harness: Harness, arrays: Sequence[np.ndarray], dtype: str) -> list[Any]:
    """Floating inputs in ``dtype``, the others (integers, booleans) unchanged."""
    return [harness.asarray(a, dtype if _is_floating(a) else None) for a in arrays]


def _checked_output(side: str, harness: Harness, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        out = fn(*args)
        if not harness.backend.is_array(out):
            kind = f"{type(out).__module__}.{type(out).__qualname__}"
            raise TypeError(f"the {side} callable must return one {side} array, got {kind}")
        return out

    return call


def _dtype_name(x: Any) -> str:
    return str(x.dtype).rsplit(".", 1)[-1]


def _input_label(names: Sequence[str] | None, index: int) -> str:
    return f"{names[index]} (input {index})" if names else f"input {index}"


def _format(x: Any) -> str:
    return repr(float(x))


def _ratios(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Elementwise |a - e| / (atol + rtol |e|), with ``compare``'s conventions (NaN == NaN, same inf)."""
    same_special = (np.isnan(actual) & np.isnan(expected)) | (np.isinf(actual) & (actual == expected))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(actual - expected) / (atol + rtol * np.abs(expected))
    ratio = np.where(same_special, 0.0, ratio)
    return np.where(np.isnan(ratio), np.inf, ratio)


def _finding(
    label: str, expected_side: str, expected: Any, actual_side: str, actual: Any, rtol: float, atol: float
) -> _Finding:
    """Compare ``actual`` with ``expected`` (:func:`polyloss.verify.compare.compare`) and, when they
    disagree, describe where: the worst element, both values, the errors, how many disagree."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    comparison = compare(a, e, rtol, atol)
    ratio, abs_error = comparison.error, comparison.abs_error
    if comparison.ok:
        return _Finding(label, expected_side, actual_side, True, ratio, abs_error)
    if a.shape != e.shape:
        line = f"  shapes differ: {expected_side} {e.shape}, {actual_side} {a.shape}"
        return _Finding(label, expected_side, actual_side, False, ratio, abs_error, (line,))
    ratios = _ratios(a, e, rtol, atol)
    bad = ratios > 1.0
    order = np.argsort(-ratios, axis=None, kind="stable")[: int(bad.sum())]
    indices = [tuple(int(i) for i in np.unravel_index(int(k), e.shape)) for k in order]
    worst = indices[0]
    difference = abs(a[worst] - e[worst])
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = difference / abs(e[worst]) if e[worst] != 0 or np.isnan(difference) else np.inf
    lines = [
        f"  {int(bad.sum())} of {e.size} element{'s' if e.size != 1 else ''} "
        f"disagree{'s' if bad.sum() == 1 else ''}; "
        f"worst at index {worst}: {expected_side} {_format(e[worst])}, {actual_side} {_format(a[worst])}",
        f"  abs error {difference:.3g}, rel error {relative:.3g}, "
        f"allowed abs error there {atol + rtol * abs(e[worst]):.3g}",
    ]
    if len(indices) > 1:
        shown = ", ".join(str(i) for i in indices[1 : 1 + _MAX_LISTED])
        more = len(indices) - 1 - _MAX_LISTED
        lines.append(f"  also at {shown}" + (f" and {more} more" if more > 0 else ""))
    return _Finding(label, expected_side, actual_side, False, ratio, abs_error, tuple(lines))


def _report(
    title: str, findings: Sequence[_Finding], dtype: str, rtol: float, atol: float, footnotes: Sequence[str] = ()
) -> str:
    failed = [f for f in findings if not f.ok]
    lines = [
        f"{title}: {len(failed)} of {len(findings)} compared quantities disagree (dtype {dtype}, rtol={rtol:g}, "
        f"atol={atol:g}; an element agrees when |actual - expected| <= atol + rtol * |expected|)"
    ]
    for f in findings:
        sides = f"{f.actual_side} vs {f.expected_side}"
        if f.ok:
            lines.append(f"{f.label} ({sides}): agrees (max abs error {f.abs_error:.3g})")
        else:
            lines.append(f"{f.label} ({sides}): DISAGREES")
            lines.extend(f.lines)
    lines.extend(footnotes)
    return "\n".join(lines)


def _weights(cotangent: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    if isinstance(cotangent, str):
        if cotangent == "weighted":
            return fixed_cotangent(shape)
        if cotangent == "sum":
            return None
        raise ValueError(f'cotangent must be "weighted", "sum" or an array, got {cotangent!r}')
    weights = np.asarray(cotangent, dtype=np.float64)
    if weights.shape != shape:
        raise ValueError(f"cotangent has shape {weights.shape}, the output has shape {shape}")
    return weights


def _weights_note(cotangent: Any, shape: tuple[int, ...]) -> str:
    if shape == () or (isinstance(cotangent, str) and cotangent == "sum"):
        return "Gradients are those of the sum of the output."
    if isinstance(cotangent, str):
        return (
            f"Gradients are those of sum(w * output), w fixed weights from 0.5 to 1.5 over the output's "
            f"{int(np.prod(shape))} elements in row-major order."
        )
    return "Gradients are those of sum(cotangent * output) with the cotangent given."


def _argnums(arrays: Sequence[np.ndarray], argnums: Sequence[int] | int | None) -> list[int]:
    if argnums is None:
        return [i for i, a in enumerate(arrays) if _is_floating(a)]
    chosen = [argnums] if isinstance(argnums, (int, np.integer)) else list(argnums)
    out = []
    for i in chosen:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -len(arrays) <= i < len(arrays):
            raise ValueError(f"argnums must index the {len(arrays)} inputs, got {i!r}")
        i = int(i) % len(arrays)
        if not _is_floating(arrays[i]):
            raise ValueError(f"argnums: input {i} has dtype {arrays[i].dtype}; only floating inputs have gradients")
        if i not in out:
            out.append(i)
    return out


@dataclass
class _Side:
    name: str  # "torch", "jax", "numpy"
    harness: Harness
    fn: Callable[..., Any]


def _agree(
    title: str,
    sides: Sequence[_Side],
    arrays: Sequence[np.ndarray],
    *,
    argnums: Sequence[int],
    dtype: str,
    rtol: float,
    atol: float,
    cotangent: Any,
    names: Sequence[str] | None,
    value_pairs: Sequence[tuple[int, int]],
    grad_pair: tuple[int, int],
) -> Agreement:
    """Values of every pair in ``value_pairs`` (expected, actual), gradients of ``grad_pair``,
    inside the harnesses' scope (JAX's float64 mode on, restored after)."""
    with _environment().scope():
        converted = [_convert(s.harness, arrays, dtype) for s in sides]
        outputs = [s.fn(*c) for s, c in zip(sides, converted, strict=True)]
        values = [s.harness.to_numpy(out) for s, out in zip(sides, outputs, strict=True)]
        findings = []
        for i, j in value_pairs:
            findings.append(_finding("value", sides[i].name, values[i], sides[j].name, values[j], rtol, atol))
            dtypes = (_dtype_name(outputs[i]), _dtype_name(outputs[j]))
            if dtypes[0] != dtypes[1]:
                findings.append(
                    _Finding(
                        "output dtype",
                        sides[i].name,
                        sides[j].name,
                        False,
                        np.inf,
                        0.0,
                        (f"  {sides[i].name} returned {dtypes[0]}, {sides[j].name} {dtypes[1]}",),
                    )
                )
        grads: dict[str, dict[str, np.ndarray]] = {}
        footnotes = []
        i, j = grad_pair
        shape = values[i].shape
        if argnums and values[i].shape == values[j].shape:
            weights = _weights(cotangent, shape)
            footnotes.append(_weights_note(cotangent, shape))
            for k in (i, j):
                _, gs = sides[k].harness.value_and_grad(sides[k].fn, converted[k], argnums, weights)
                grads[sides[k].name] = {
                    names[n] if names else f"input {n}": np.asarray(g, dtype=np.float64)
                    for n, g in zip(argnums, gs, strict=True)
                }
            for n in argnums:
                key = names[n] if names else f"input {n}"
                findings.append(
                    _finding(
                        f"gradient w.r.t. {_input_label(names, n)}",
                        sides[i].name,
                        grads[sides[i].name][key],
                        sides[j].name,
                        grads[sides[j].name][key],
                        rtol,
                        atol,
                    )
                )
        elif argnums:
            footnotes.append("Gradients were not compared: the outputs' shapes differ.")
        if not all(f.ok for f in findings):
            raise AssertionError(_report(title, findings, dtype, rtol, atol, footnotes))
        return Agreement(
            dtype=dtype,
            rtol=rtol,
            atol=atol,
            values={s.name: np.asarray(v, dtype=np.float64) for s, v in zip(sides, values, strict=True)},
            grads=grads,
            abs_errors={f"{f.label} ({f.actual_side} vs {f.expected_side})": f.abs_error for f in findings},
            ratios={f"{f.label} ({f.actual_side} vs {f.expected_side})": f.ratio for f in findings},
        )


# --------------------------------------------------------------------------- the checks


def assert_backends_agree(
    torch_fn: Callable[..., Any],
    jax_fn: Callable[..., Any],
    *arrays: Any,
    argnums: Sequence[int] | int | None = None,
    dtype: str = "float64",
    rtol: float | None = None,
    atol: float | None = None,
    cotangent: str | Any = "weighted",
    names: Sequence[str] | None = None,
) -> Agreement:
    """Check that a torch callable and a JAX callable agree, in value and in gradient.

    Each NumPy input is converted to a torch tensor and to a JAX array (floating
    inputs in ``dtype``, integer and boolean inputs unchanged); both callables are
    called on them positionally, each must return one array, and the outputs are
    compared. Then the gradients with respect to the inputs in ``argnums`` are
    compared: for a scalar output the gradient of the output itself; for any other
    output, the gradient of the sum of the output weighted elementwise by fixed
    weights (``cotangent="weighted"``), so that a per-element error cannot hide
    behind a sum. The torch side is the reference: relative errors are relative to
    its values. NaN agrees with NaN, and an infinity with the same infinity.

    Pass other arguments (hyper-parameters, modules' weights) by closing over them
    (a ``lambda``, ``functools.partial`` or an ``nn.Module`` instance). The first
    call loads torch and jax; JAX's float64 mode is on during the check only.

    Args:
        torch_fn: takes torch tensors, returns a torch tensor (an ``nn.Module``
            instance works).
        jax_fn: takes JAX arrays, returns a JAX array (jitted or not).
        *arrays: the inputs, NumPy arrays (or anything ``np.asarray`` takes) of a
            numeric dtype.
        argnums: the positions of the inputs to differentiate; default every
            floating input. Empty (``()``) compares values only.
        dtype: the floating dtype of the inputs: ``"float64"`` (default),
            ``"float32"``, ``"float16"`` or ``"bfloat16"``.
        rtol: relative tolerance; default that of ``dtype`` in :data:`TOLERANCES`.
        atol: absolute tolerance; default that of ``dtype`` in :data:`TOLERANCES`.
        cotangent: for non-scalar outputs, ``"weighted"`` (default: weights from
            0.5 to 1.5 over the elements in row-major order), ``"sum"`` (plain
            sum), or an array of the output's shape.
        names: one name per input, used in the report (default ``input 0``, ...).

    Returns:
        An :class:`Agreement` with both outputs, both sets of gradients and the
        largest error of each compared quantity.

    Raises:
        AssertionError: the outputs, their dtypes or a gradient disagree; the
            message is a report naming each quantity compared and, for each
            disagreement, how many elements disagree, the worst element's index,
            both values, the absolute and relative errors and the tolerance there.
        ImportError: torch or jax is not installed.
        TypeError: an input is not numeric, or a callable returns no array.
        ValueError: bad ``dtype``, ``argnums``, ``names``, ``cotangent`` or tolerances.
    """
    inputs = _as_numpy_inputs(arrays)
    rtol, atol = _tolerances(dtype, rtol, atol)
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(inputs) or len(set(names)) != len(names):
            raise ValueError(f"names must be {len(inputs)} distinct names, one per input, got {names}")
    chosen = _argnums(inputs, argnums)
    env = _environment()
    sides = [
        _Side("torch", env.harnesses["torch"], _checked_output("torch", env.harnesses["torch"], torch_fn)),
        _Side("jax", env.harnesses["jax"], _checked_output("jax", env.harnesses["jax"], jax_fn)),
    ]
    return _agree(
        "torch and jax disagree",
        sides,
        inputs,
        argnums=chosen,
        dtype=dtype,
        rtol=rtol,
        atol=atol,
        cotangent=cotangent,
        names=names,
        value_pairs=[(0, 1)],
        grad_pair=(0, 1),
    )


def assert_loss_agrees(
    name: str,
    *arrays: Any,
    dtype: str = "float64",
    rtol: float | None = None,
    atol: float | None = None,
    **params: Any,
) -> Agreement:
    """Check that a polyloss loss agrees across ``polyloss.numpy``, ``polyloss.torch`` and ``polyloss.jax``.

    The positional NumPy inputs go to the loss positionally, converted as in
    :func:`assert_backends_agree`; ``params`` go by keyword (NumPy arrays among
    them, such as a class ``weight``, are converted too, but not differentiated).
    The torch and JAX values are compared with the NumPy value, the JAX value
    and gradients with the torch ones (gradients with respect to every floating
    positional input, weighted as ``cotangent="weighted"`` does). The NumPy side
    is skipped for bfloat16 (NumPy has no such dtype) and for losses that need
    autodiff (absent from ``polyloss.numpy``). Losses taking a callable
    (``gradient_penalty``'s critic, ``perceptual``'s feature extractor) need one
    callable per framework and are not supported.

    Args:
        name: the loss's name (``"focal"``, ``"ctc"``, ...; see ``python -m polyloss list``).
        *arrays: the loss's positional inputs, NumPy arrays.
        dtype: the floating dtype of the inputs, as in :func:`assert_backends_agree`.
        rtol: relative tolerance; default the loss's spec's tolerance for
            ``dtype`` (the conformance harness's), else :data:`TOLERANCES`.
        atol: absolute tolerance, defaulting likewise.
        **params: the loss's keyword arguments (``reduction`` included; default
            the loss's own).

    Returns:
        An :class:`Agreement` with every side's value, the torch and JAX
        gradients by input name, and the largest error of each comparison.

    Raises:
        AssertionError: two backends disagree (the report names which, and where).
        ImportError: torch or jax is not installed.
        ValueError: unknown loss name, bad ``dtype`` or tolerances.
    """
    from polyloss.core import CORE_LOSSES
    from polyloss.verify.specs import SPECS

    if name not in CORE_LOSSES:
        raise ValueError(f"unknown loss {name!r}; see `python -m polyloss list`")
    core = CORE_LOSSES[name]
    spec = SPECS.get(name)
    rtol, atol = _tolerances(dtype, rtol, atol, spec.tolerances if spec else None)
    inputs = _as_numpy_inputs(arrays)
    parameters = list(inspect.signature(core).parameters.values())[1:]
    positional = [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    if len(inputs) > len(positional):
        raise ValueError(
            f"{name} takes {len(positional)} positional inputs ({', '.join(positional)}), got {len(inputs)}"
        )
    env = _environment()
    import polyloss.jax
    import polyloss.torch

    namespaces = {"torch": polyloss.torch, "jax": polyloss.jax}
    with_numpy = dtype != "bfloat16" and not core.needs_autodiff and "numpy" in env.harnesses
    if with_numpy:
        import polyloss.numpy

        namespaces = {"numpy": polyloss.numpy, **namespaces}

    def side(framework: str) -> _Side:
        harness = env.harnesses[framework]
        loss = getattr(namespaces[framework], name)
        keywords = {
            k: (harness.asarray(v, dtype if _is_floating(v) else None) if isinstance(v, np.ndarray) else v)
            for k, v in params.items()
        }
        return _Side(framework, harness, lambda *xs: loss(*xs, **keywords))

    sides = [side(framework) for framework in namespaces]
    torch_index = len(sides) - 2
    value_pairs = ([(0, 1), (0, 2)] if with_numpy else []) + [(torch_index, torch_index + 1)]
    return _agree(
        f"polyloss {name} disagrees across backends",
        sides,
        inputs,
        argnums=_argnums(inputs, None),
        dtype=dtype,
        rtol=rtol,
        atol=atol,
        cotangent="weighted",
        names=positional[: len(inputs)],
        value_pairs=value_pairs,
        grad_pair=(torch_index, torch_index + 1),
    )
