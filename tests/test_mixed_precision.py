"""Mixed precision: float16 and bfloat16 inputs of every registered loss, torch and JAX.

The binding layer (``polyloss/_binding.py``) lifts float16/bfloat16 array arguments
to float32 before the core sees them, so for every loss in ``SPECS`` and every
configuration (torch float16, torch bfloat16, JAX bfloat16) these must hold, on
inputs drawn from the spec's variants (every floating input in the half type,
integer inputs left integer):

* the loss is float32, for every reduction;
* it equals the float32 loss of the SAME rounded inputs (the computation is
  float32: ``ROUNDED_TOL``, torch bit for bit);
* it is finite wherever the float32 loss of the unrounded inputs is finite, and
  within the effect of input rounding of that float32 loss: the bound is
  ``C * u * sum_i |d loss / d x_i| |x_i|`` (per output element, float64 autograd
  of the value over every floating input), with ``u`` the unit roundoff of the
  half type (``|round(x) - x| <= u |x|``), so ``u * sum |g||x|`` is the
  first-order bound, ``u * cond * |loss|`` in terms of the loss' relative
  condition number; plus twice the spec's float32 tolerance for the two float32
  evaluations (``HalfPrecision.rounding_factor`` of the spec, and the measured table
  here);
* the gradients of the differentiable inputs have the input's dtype and shape,
  are finite, and (torch) equal the float32 gradients of the same rounded inputs
  rounded to the half type.

Which variants run, and the zero cases below, are each spec's ``half_precision``
(``polyloss.verify.specs.HalfPrecision``): no table here names a loss.

A second test feeds zeros where an epsilon or a guard matters (zero vectors for
normalising losses, empty masks with ``smooth=0``, zero-area boxes, zero
probabilities, zero distances, a zero critic gradient) and asserts finite values
and gradients: no guard relies on an epsilon the half type cannot represent. The
values are, and so are the gradients, except in float16 where the loss' true slope exceeds
float16's range (``ZeroCase.float16_gradient_beyond_range``: +-inf there, documented). Zero rows of
normalising and cosine losses have gradient exactly 0 (``ZeroCase.zero_row_gradients``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from polyloss.verify import cases, checks
from polyloss.verify.compare import compare
from polyloss.verify.specs import DEFAULT_ROUNDING_FACTOR, SPECS, Case, LossSpec, ZeroCase

CONFIGS = (("torch", "float16"), ("torch", "bfloat16"), ("jax", "bfloat16"))
CONFIG_IDS = [f"{backend}-{dtype}" for backend, dtype in CONFIGS]

#: unit roundoff (half the spacing above 1.0): rounding moves x by at most UNIT_ROUNDOFF * |x|
#: (float16: 10 stored significand bits; bfloat16: 7)
UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8}
FLOAT16_MAX = 65504.0

#: half inputs vs float32 of the same rounded inputs, (rtol, atol): both are the same float32
#: computation. torch agrees bit for bit (atol: 0 == 0, compare divides by it). JAX compiles both
#: paths into one program (see _CHEAP_COMPILE), where XLA may schedule them differently: measured
#: worst |difference| 2.1e-7 (clip, a loss of 0.0037 from logits of about 14: cancellation), so
#: the float32 spec's atol of 1e-6.
ROUNDED_TOL = {"torch": (1e-6, 1e-30), "jax": (1e-6, 1e-6)}
#: half gradients vs the float32 gradients of the same rounded inputs, rounded to the half type:
#: one unit in the half type's last place (a float32 gradient next to a rounding boundary may round
#: the other way after a last-bit difference), absolute at float16's smallest subnormal
GRAD_RTOL = {"float16": 2.0**-10, "bfloat16": 2.0**-7}
GRAD_ATOL = {"float16": 2.0**-24, "bfloat16": 1e-30}

#: half inputs vs float32 of the unrounded inputs:
#:     |error| <= C * u * sum_i |dL/dx_i| |x_i| + 2 * (float32 rtol * |L| + float32 atol)
#: C = DEFAULT_ROUNDING_FACTOR = 2 (a spec's ``half_precision.rounding_factor``) leaves a factor 2 over
#: the first-order bound for second-order terms. The relative
#: tolerance this grants is u times the loss' condition number: large where the spec draws
#: ill-conditioned inputs, e.g. measured relative errors (bfloat16, in units of u) of 112 u for
#: gaussian_nll (per-sample variance), 46 u triplet, 45 u contrastive, 36 u huber/asymmetric_mse,
#: 28 u nt_xent at temperature 0.01, and unbounded ones for losses that are ~0 (infonce at
#: temperature 0.01, arcface): each within its condition-scaled bound.
# Measured worst |error| / (u sum|g||x| + float32 floor), i.e. the C each loss needs, over every
# variant of every loss, seeds 0-5, n = 1..4, torch float16/bfloat16 and JAX bfloat16:
#   box:            box_iou 0.56, box_giou 0.56, box_diou 0.60, box_ciou 0.55
#   classification: cross_entropy 0.76, nll 0.84, focal 0.72, bce 0.68, bce_with_logits 0.75,
#                   sigmoid_focal 0.75, poly1 0.70, hinge 0.71, squared_hinge 0.72
#   contrastive:    infonce 0.44, nt_xent 0.38, clip 0.35, siglip 0.47
#   distribution:   kl_div 0.53, js_div 0.48, distillation 0.82
#   generative:     gan_discriminator 0.96, gan_generator 0.99, wgan_critic 0.65, wgan_generator 0.81,
#                   hinge_discriminator 0.87, hinge_generator 0.86, gradient_penalty 0.59, vae_kl 0.75,
#                   vae 0.64, perceptual 0.53
#   metric:         contrastive 0.51, triplet 0.51, triplet_mined 7.34 (see below), cosine_embedding 0.38,
#                   margin_ranking 0.63, arcface 0.95, cosface 0.39
#   multitask:      uncertainty_weighting 0.75, curriculum 0.85
#   regression:     mse 0.72, mae 0.70, huber 0.86, smooth_l1 0.85, log_cosh 0.71, quantile 0.84,
#                   poisson_nll 0.81, gaussian_nll 0.78, asymmetric_mse 0.87
#   segmentation:   dice 0.42, tversky 0.42, focal_tversky 0.43, jaccard 0.42, generalized_dice 0.45,
#                   dice_ce 0.36
#   sequence:       ctc 0.79
# triplet_mined is discontinuous where a triplet's loss crosses 0: batch_all averages over the
# triplets with a positive loss (and semi_hard picks its negative by a comparison), so rounding
# can change the count: 7.34 at mining=batch_all,singleton class, seed 2, n 4, bfloat16 (mean 0.797
# vs 0.701, the float64 losses of the unrounded and the rounded inputs agree with that). No
# condition bound holds across such a switch; the inputs tested here (seed 0) are not at one.
#
# A loss whose C exceeds the default sets ``HalfPrecision(rounding_factor=...)`` in its spec, with a comment
# giving its measured error and the reason (never skip a loss instead). None needs one today.
#
# Which variants: the first of every loss (n = 3), plus each spec's ``half_precision.variants``, the
# ones with extreme or special inputs (saturated logits, -inf log-probabilities, temperature 0.01,
# smooth=0 with absent classes, an impossible CTC alignment, discontinuous mining, a badly
# conditioned Gaussian NLL), n = 2.


def _variant_index(spec: LossSpec, variant_name: str) -> int:
    names = [v.name for v in spec.variants]
    assert variant_name in names, f"{spec.name}: no variant {variant_name!r} (have {names})"
    return names.index(variant_name)


MATRIX = [(name, 0, 3) for name in SPECS]
MATRIX += [(name, _variant_index(spec, v), 2) for name, spec in SPECS.items() for v in spec.half_precision.variants]
MATRIX_IDS = [f"{name}[{SPECS[name].variants[i].name}]" for name, i, _ in MATRIX]
SEED = 0


# --------------------------------------------------------------------------- helpers


def _is_float(value: np.ndarray) -> bool:
    return bool(np.issubdtype(value.dtype, np.floating))


def _inputs(backend, case: Case, dtype: str) -> list:
    """The case's arrays in ``backend``: floats in ``dtype``, integers as they are (int64)."""
    return [backend.asarray(v, dtype if _is_float(v) else None) for v in case.arrays.values()]


def _rounded(backend, case: Case, dtype: str) -> Case:
    """The case with its floats rounded to ``dtype`` (held exactly, as float64)."""
    arrays = {
        name: backend.to_numpy(backend.asarray(v, dtype)).astype(np.float64) if _is_float(v) else v
        for name, v in case.arrays.items()
    }
    return dataclasses.replace(case, arrays=arrays)


def _dtype_name(x) -> str:
    return str(x.dtype).rsplit(".", 1)[-1]


def _grad_reduction(spec: LossSpec) -> str:
    """Gradients of the unreduced loss where the loss has one (as the finite-difference checks)."""
    return "none" if "none" in spec.reductions else "sum"


def _weighted_sum(xp, out):
    """The scalar whose gradient is taken: the unreduced loss weighted by the conformance cotangent."""
    weights = cases.cotangent(tuple(out.shape))
    return xp.sum(out) if weights is None else xp.sum(out * xp.asarray(weights, dtype=out.dtype))


def _torch_run(spec: LossSpec, backend, case: Case, arrays: list):
    """Eager torch: ({reduction: loss}, [gradients of the differentiable inputs]), dtypes kept."""
    import torch

    names, argnums = list(case.arrays), cases.argnums(spec, case)
    values = {r: cases.closure(spec, backend, names, case.params, r)(*arrays) for r in spec.reductions}
    inputs = [a.detach().clone().requires_grad_(i in argnums) for i, a in enumerate(arrays)]
    out = cases.closure(spec, backend, names, case.params, _grad_reduction(spec))(*inputs)
    grads = torch.autograd.grad(_weighted_sum(torch, out), [inputs[i] for i in argnums], allow_unused=True)
    filled = [torch.zeros_like(inputs[i]) if g is None else g for g, i in zip(grads, argnums, strict=True)]
    return {r: v.detach() for r, v in values.items()}, filled


# Eager JAX compiles every primitive of every new shape on its own (about 0.5 s of CPU per case
# here, over the file's budget), so JAX runs a case as one jax.jit program, compiled with cheaper
# XLA CPU settings (3x faster to compile). The half inputs meet the binding as in eager mode (the
# float32 lift happens while tracing); test_conformance checks jit == eager. (Not optimization
# level 0: with the fusion emitters off it computes log-sum-exp 30 ulps off, e.g. infonce at
# temperature 0.01 gives 3.8e-6 for a loss of 7e-17.) Compile time grows with the program, so the
# float32 evaluations in JAX cover the gradient's reduction only (the lift happens before any
# reduction code; torch covers every reduction), and JAX's half gradients are checked for dtype,
# shape and finiteness, not against float32 gradients (torch checks those, exactly).
_CHEAP_COMPILE: dict[str, str | bool] = {
    "xla_backend_optimization_level": "1",
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_parallel_codegen_split_count": "1",
    "xla_cpu_use_fusion_emitters": False,
}


def _jax_run(spec: LossSpec, backend, case: Case, half: list, rounded: list, unrounded: list):
    import jax
    import jax.numpy as jnp

    names, argnums = list(case.arrays), tuple(cases.argnums(spec, case))
    closures = {r: cases.closure(spec, backend, names, case.params, r) for r in spec.reductions}
    reduction = _grad_reduction(spec)

    def program(h, r32, u32):
        values = {r: f(*h) for r, f in closures.items()}
        grads = jax.grad(lambda *a: _weighted_sum(jnp, closures[reduction](*a)), argnums=argnums)(*h)
        return values, list(grads), {reduction: closures[reduction](*r32)}, {reduction: closures[reduction](*u32)}

    lowered = jax.jit(program).lower(half, rounded, unrounded)
    try:
        compiled = lowered.compile(compiler_options=_CHEAP_COMPILE)
    except Exception:  # an XLA without one of these options: its defaults are only slower
        compiled = lowered.compile()
    return compiled(half, rounded, unrounded)


def _evaluate(spec: LossSpec, backend, case: Case, dtype: str) -> dict:
    """As framework arrays (dtypes kept): the loss per reduction and the gradients on the half inputs
    ("half", "half_grads"); the loss and gradients on float32 copies of the same rounded inputs
    ("same", "same_grads"); the loss on the unrounded inputs in float32 ("unrounded"). JAX gives
    "same" and "unrounded" for the gradient's reduction only, and no "same_grads"."""
    half = _inputs(backend, case, dtype)
    rounded_case = _rounded(backend, case, dtype)
    rounded = _inputs(backend, rounded_case, "float32")
    unrounded = _inputs(backend, case, "float32")
    if backend.name == "jax":
        hv, hg, rv, uv = _jax_run(spec, backend, case, half, rounded, unrounded)
        rg = None
    else:
        (hv, hg), (rv, rg) = _torch_run(spec, backend, case, half), _torch_run(spec, backend, rounded_case, rounded)
        uv = {r: cases.closure(spec, backend, list(case.arrays), case.params, r)(*unrounded) for r in spec.reductions}
    return {"inputs": half, "half": hv, "half_grads": hg, "same": rv, "same_grads": rg, "unrounded": uv}


_VALUE_DERIVATIVE_BACKEND = None


def _value_derivative_backend():
    """torch with ``stop_gradient`` as the identity: autograd then differentiates the VALUE through
    the places where a loss holds a term constant on purpose (CIoU's alpha, the distillation
    teacher, the Gaussian NLL's variance clamp), which input rounding does move."""
    global _VALUE_DERIVATIVE_BACKEND
    if _VALUE_DERIVATIVE_BACKEND is None:
        from polyloss.backends.torch import TorchBackend
        from polyloss.verify.harness.torch import TorchHarness

        class ValueDerivative(TorchBackend):
            def stop_gradient(self, x):
                return x

        backend = ValueDerivative()
        backend.name = "torch-value-derivative"  # its own binding cache entry
        _VALUE_DERIVATIVE_BACKEND = TorchHarness(backend)
    return _VALUE_DERIVATIVE_BACKEND


def _sensitivity(spec: LossSpec, case: Case) -> dict[str, np.ndarray]:
    """Per reduction and output element: sum_i |d loss / d x_i| |x_i| over every floating input
    (float64 autograd of the value, unrounded case). Inputs that rounding leaves unchanged (0,
    +-inf) contribute 0; a non-finite derivative elsewhere makes the bound infinite."""
    import torch

    backend = _value_derivative_backend()
    names, values = list(case.arrays), list(case.arrays.values())
    floats = [i for i, v in enumerate(values) if _is_float(v)]
    out = {}
    for r in spec.reductions:
        inputs = [backend.asarray(v, "float64" if _is_float(v) else None) for v in values]
        for i in floats:
            inputs[i].requires_grad_(True)
        y = cases.closure(spec, backend, names, case.params, r)(*inputs)
        flat = y.reshape(-1)
        bound = np.zeros(flat.shape[0])
        for j in range(flat.shape[0]):
            if not (flat.requires_grad and torch.isfinite(flat[j])):
                continue
            grads = torch.autograd.grad(flat[j], [inputs[i] for i in floats], retain_graph=True, allow_unused=True)
            for i, g in zip(floats, grads, strict=True):
                if g is not None:
                    x = values[i]
                    with np.errstate(invalid="ignore"):
                        terms = np.nan_to_num(np.abs(g.detach().numpy()) * np.abs(x), nan=np.inf)
                    bound[j] += float(np.where(np.isfinite(x) & (x != 0), terms, 0.0).sum())
        out[r] = bound.reshape(tuple(y.shape))
    return out


_REFERENCE: dict[tuple[str, int, int], tuple] = {}


def _reference(env, name: str, variant: int, n: int):
    """(case, float64 values, sensitivity) of one matrix entry, shared by the three configurations."""
    key = (name, variant, n)
    if key not in _REFERENCE:
        spec = SPECS[name]
        (case,) = cases.make_cases(spec, variant, SEED, n)
        _REFERENCE[key] = case, checks.numpy_values(spec, case, env), _sensitivity(spec, case)
    return _REFERENCE[key]


def _check_half(
    spec: LossSpec, env, backend_name: str, dtype: str, case: Case, note: str, overflow: dict[str, float] | None = None
):
    """The checks both tests share: loss dtype, agreement with float32 on the same rounded inputs
    (values and gradients), finiteness, gradient dtypes. Returns the half and the unrounded
    float32 losses per reduction and the half gradients by input name, as NumPy arrays.
    ``overflow`` (float16 only): the inputs whose float32 gradient is documented to exceed
    float16's range (``ZeroCase.float16_gradient_beyond_range``), with the documented bound on
    its magnitude."""
    backend = env.harnesses[backend_name]
    run = _evaluate(spec, backend, case, dtype)
    half = {r: backend.to_numpy(v) for r, v in run["half"].items()}
    unrounded = {r: backend.to_numpy(v) for r, v in run["unrounded"].items()}
    for r in spec.reductions:
        assert _dtype_name(run["half"][r]) == "float32", f"{note} ({r}): loss dtype {run['half'][r].dtype}"
    for r, same in run["same"].items():
        comparison = compare(half[r], backend.to_numpy(same), *ROUNDED_TOL[backend_name])
        assert comparison.ok, f"{note} ({r}): half inputs != float32 on the same rounded inputs: {comparison.detail}"
    for r, f32 in unrounded.items():
        bad = np.isfinite(f32) & ~np.isfinite(half[r])
        assert not bad.any(), f"{note} ({r}): non-finite {half[r][bad]} where float32 gives {f32[bad]}"

    # gradients: the input's dtype and shape, == the float32 gradient rounded to the half type, finite
    inputs = run["inputs"]
    names = list(spec.differentiable_in(case))
    same_grads = run["same_grads"] or [None] * len(names)
    grads = {}
    for name, i, g, g32 in zip(names, cases.argnums(spec, case), run["half_grads"], same_grads, strict=True):
        where = f"{note}: d/d{name}"
        assert _dtype_name(g) == _dtype_name(inputs[i]), f"{where} has dtype {g.dtype}, input {inputs[i].dtype}"
        assert tuple(g.shape) == tuple(inputs[i].shape), f"{where} has shape {tuple(g.shape)}"
        got = grads[name] = backend.to_numpy(g)
        if g32 is None:  # JAX: the float32 gradient is not computed (see _CHEAP_COMPILE)
            g32 = got.astype(np.float64)
        else:
            g32 = backend.to_numpy(g32)
            with np.errstate(over="ignore"):  # a documented overflow rounds to +-inf
                expected = backend.to_numpy(backend.asarray(g32, dtype))
            comparison = compare(got, expected, GRAD_RTOL[dtype], GRAD_ATOL[dtype])
            assert comparison.ok, f"{where} != the float32 gradient rounded to {dtype}: {comparison.detail}"
            assert np.isfinite(g32).all(), f"{where}: the float32 gradient is not finite: {g32}"
        if overflow and name in overflow:
            # documented: |float32 gradient| > float16's max (65504) at the guard; the rest stays finite
            largest = float(np.abs(g32).max())
            assert FLOAT16_MAX < largest <= overflow[name], (
                f"{where}: max |float32 gradient| {largest:.3g}, documented in (65504, {overflow[name]:.3g}]; "
                f"if it no longer overflows, remove it from the spec's ZeroCase.float16_gradient_beyond_range"
            )
            assert np.isfinite(got[np.abs(g32) <= FLOAT16_MAX]).all(), f"{where} not finite: {got}"
        else:
            assert np.isfinite(got).all(), f"{where} not finite: {got} (float32 gradient {g32})"
    return half, unrounded, grads


# --------------------------------------------------------------------------- the matrix


def test_the_matrix_covers_every_loss():
    assert {name for name, _, _ in MATRIX} == set(SPECS)
    assert all(spec.half_precision.rounding_factor >= DEFAULT_ROUNDING_FACTOR for spec in SPECS.values())
    labels = [zero.label for _, zero in ZERO_CASES]
    assert len(labels) == len(set(labels)), "zero cases need distinct labels"
    for name, zero in ZERO_CASES:  # the edited inputs exist and are differentiable where gradients are asserted
        spec = SPECS[name]
        index = [v.name for v in spec.variants].index(zero.variant)
        case = cases.make_cases(spec, index, 0, 2)[0]
        asserted = set(zero.zero_row_gradients) | set(zero.float16_gradient_beyond_range)
        assert asserted <= set(spec.differentiable_in(case)), (zero.label, asserted)


@pytest.mark.parametrize("backend_name", ["torch", "jax"])
def test_the_binding_lifts_half_floats_only(env, backend_name):
    """float16/bfloat16 -> float32; float32, float64 and integers (labels, lengths) as they are."""
    backend = env.harnesses[backend_name]
    lifted = {
        "float16": "float32",
        "bfloat16": "float32",
        "float32": "float32",
        "float64": "float64",
        "int32": "int32",
        "int64": "int64",
    }
    for dtype, expected in lifted.items():
        x = backend.asarray(np.array([1, 2]), dtype)
        assert _dtype_name(x) == dtype
        assert _dtype_name(backend.backend.compute_dtype(x)) == expected, (backend_name, dtype)


@pytest.mark.parametrize("backend_name,dtype", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("name,variant,n", MATRIX, ids=MATRIX_IDS)
def test_half_inputs_compute_in_float32(env, name, variant, n, backend_name, dtype):
    spec = SPECS[name]
    case, expected64, sensitivity = _reference(env, name, variant, n)
    note = f"{name} variant {spec.variants[variant].name!r} seed {SEED} n {n} {backend_name} {dtype}"
    half, unrounded, _ = _check_half(spec, env, backend_name, dtype, case, note)

    # within the effect of input rounding of the float32 loss on the unrounded inputs
    c, u = spec.half_precision.rounding_factor, UNIT_ROUNDOFF[dtype]
    rtol32, atol32 = spec.tolerances["float32"]
    for r in spec.reductions:
        # JAX has the unrounded float32 loss for the gradient's reduction only: the other reductions
        # are compared with the float64 loss, which the float32 one is within the floor of
        h, e64 = half[r], expected64[r]
        f32 = unrounded.get(r, e64)
        finite = np.isfinite(f32)
        bound = c * u * sensitivity[r] + 2 * (rtol32 * np.abs(e64) + atol32)
        with np.errstate(invalid="ignore"):
            error = np.where(finite, np.abs(h.astype(np.float64) - f32), 0.0)
        worst = np.unravel_index(int(np.argmax(error - bound)), error.shape) if error.ndim else ()
        assert np.all(error <= bound), (
            f"{note} ({r}): |half - float32| = {error[worst]:.3g} > {bound[worst]:.3g} = {c} u sum|dL/dx||x| + "
            f"float32 floor (u = {u}, sum|dL/dx||x| = {sensitivity[r][worst]:.3g}, loss {f32[worst]!r})"
        )
        # non-finite float32 losses: the half one is the same special value
        assert np.array_equal(h[~finite], f32[~finite], equal_nan=True), f"{note} ({r}): {h} vs {f32}"


# --------------------------------------------------------------------------- zeros where epsilons matter


# each spec's ``half_precision.zero_cases`` put a 0 (or an exact tie) where a guard or an epsilon
# matters; the edited arrays go to the half type as in the matrix. Variants that are such cases as
# drawn (kl_div's -inf log-probabilities, dice and generalized_dice with an absent class and
# smooth=0, CTC's impossible sample) are in the matrix, whose losses must be finite wherever
# float32's are. A float16 gradient beyond range is documented, not a bug: at these points the
# loss' true slope exceeds float16's range. The losses compute in float32 and their values stay
# finite; their float32 gradient is of the order of 1/eps because the function torch defines there
# (the clamp at eps) is that steep, and the limit without the clamp is infinite. Rounded back to
# the input's dtype it is +-inf, which is what a float16 GradScaler needs to see to skip the step.
# bfloat16 has float32's range and stays finite. (Zero vectors in normalising and cosine losses
# are not such cases: their 1/eps slope is an artefact of the floor, and l2_normalize /
# cosine_embedding give them gradient 0, ``zero_row_gradients``.)
ZERO_CASES = [(name, zero) for name, spec in SPECS.items() for zero in spec.half_precision.zero_cases]


def _zero_case(loss: str, zero: ZeroCase) -> Case:
    spec = SPECS[loss]
    (case,) = cases.make_cases(spec, _variant_index(spec, zero.variant), SEED, 2)
    arrays = {k: v.copy() for k, v in case.arrays.items()}
    for edit in zero.edits:
        edit(arrays)
    return dataclasses.replace(case, arrays=arrays, params={**case.params, **zero.params})


@pytest.mark.parametrize("backend_name,dtype", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("loss,zero", ZERO_CASES, ids=[zero.label for _, zero in ZERO_CASES])
def test_zeros_where_an_epsilon_matters_stay_finite(env, loss, zero, backend_name, dtype):
    spec = SPECS[loss]
    case = _zero_case(loss, zero)
    note = f"{zero.label} {backend_name} {dtype}"
    overflow = zero.float16_gradient_beyond_range if dtype == "float16" else None
    half, unrounded, grads = _check_half(spec, env, backend_name, dtype, case, note, overflow)  # gradients finite
    for name, rows in zero.zero_row_gradients.items():
        picked = list(rows)
        assert np.all(grads[name][picked] == 0), f"{note}: d/d{name} at the zero rows {picked}: {grads[name][picked]}"
    for r, f32 in unrounded.items():
        assert np.isfinite(f32).all(), f"{note} ({r}): float32 loss not finite: {f32}"
    for r in spec.reductions:
        assert np.isfinite(half[r]).all(), f"{note} ({r}): loss not finite: {half[r]}"
