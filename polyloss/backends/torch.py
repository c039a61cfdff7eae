"""PyTorch backend: native fused kernels for the primitive set.

The only module (with ``polyloss/torch.py``) that imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat.torch as xp
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from polyloss.backends.base import ArrayAPIBackend
from polyloss.core._checks import accelerator_values_checked
from polyloss.core._reduce import reduce
from polyloss.core._typing import (
    Backend,
    Devices,
    RingBlocks,
    RowChunks,
    RowGrads,
    SharedGrads,
    TransposedProduct,
)

_is_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor

Chunk = tuple[torch.Tensor, ...]
Shared = tuple[torch.Tensor | None, ...]


def _starts(n: int, chunk_size: int) -> range:
    return range(0, max(n, 1), chunk_size)  # an empty batch is one empty chunk


def _chunk(arrays: Chunk, start: int, size: int) -> Chunk:
    return tuple(x[start : start + size] for x in arrays)


def _add(total: list[torch.Tensor | None], parts: SharedGrads) -> None:
    """Sum each chunk's shared gradients into ``total``; a TransposedProduct through addmm_,
    in place (no (V, H) temporary per chunk)."""
    for i, part in enumerate(parts):
        current = total[i]
        if isinstance(part, TransposedProduct):
            if current is None:
                total[i] = part.left.T @ part.right
            else:
                current.addmm_(part.left.T, part.right)
        elif part is not None:
            total[i] = part if current is None else current + part


def _concat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if parts[0] is None else torch.cat([p for p in parts if p is not None])


class _Accumulated:
    """Row gradients collected (concatenated at the end) and shared gradients summed, one chunk at
    a time: a chunk's temporaries (its logits' gradient) are released before the next chunk runs."""

    def __init__(self, n_rows: int, n_shared: int) -> None:
        self.row_parts: list[list[torch.Tensor | None]] = [[] for _ in range(n_rows)]
        self.shared: list[torch.Tensor | None] = [None] * n_shared

    def add(self, row_grads: RowGrads, shared_grads: SharedGrads) -> None:
        for parts, grad in zip(self.row_parts, row_grads, strict=True):
            parts.append(grad)
        _add(self.shared, shared_grads)

    def result(self) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        return [_concat(parts) for parts in self.row_parts], self.shared


class _ChunkedValues(torch.autograd.Function):
    """Per-row values chunk by chunk; the backward pass recomputes each chunk (twice
    differentiable: the backward is torch code on the saved inputs, and under a double backward
    it recomputes the per-row statistic too, which the forward pass saved without its graph)."""

    generate_vmap_rule = True  # torch.func.vmap runs forward and backward per sample

    @staticmethod
    def forward(chunks: RowChunks, size: int, n_rows: int, *arrays: Any) -> tuple[torch.Tensor, ...]:
        rows, shared = arrays[:n_rows], arrays[n_rows:]
        outs = [chunks.forward(_chunk(rows, start, size), shared) for start in _starts(rows[0].shape[0], size)]
        return torch.cat([values for values, _ in outs]), torch.cat([saved for _, saved in outs])

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        chunks, size, n_rows, *arrays = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(*arrays, output[1])
        ctx.chunking = (chunks, size, n_rows)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor, _: Any) -> tuple[Any, ...]:
        chunks, size, n_rows = ctx.chunking
        *arrays, saved = ctx.saved_tensors
        rows, shared = tuple(arrays[:n_rows]), tuple(arrays[n_rows:])
        grads = _Accumulated(len(rows), len(shared))
        differentiated = torch.is_grad_enabled()  # create_graph: this backward is itself differentiated
        for start in _starts(rows[0].shape[0], size):
            end, chunk = start + size, _chunk(rows, start, size)
            statistic = chunks.forward(chunk, shared)[1] if differentiated else saved[start:end]
            grads.add(*chunks.backward(chunk, shared, statistic, g[start:end]))
        row_grads, shared_grads = grads.result()
        return (None, None, None, *row_grads, *shared_grads)


def _has_gradient(x: torch.Tensor | None) -> bool:
    return x is not None and x.is_floating_point()


class _ChunkedWeightedSum(torch.autograd.Function):
    """sum(row_weights * values), its gradients computed chunk by chunk in the forward pass
    and scaled by the cotangent in the backward pass: once differentiable (a second
    derivative raises instead of treating the stored gradients as constants)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(
        chunks: RowChunks, size: int, n_rows: int, row_weights: torch.Tensor, *arrays: Any
    ) -> tuple[torch.Tensor, ...]:
        rows, shared = arrays[:n_rows], arrays[n_rows:]
        values_parts = []
        accumulated = _Accumulated(len(rows), len(shared))
        for start in _starts(rows[0].shape[0], size):
            chunk_values, *chunk_grads = chunks.forward_and_backward(
                _chunk(rows, start, size), shared, row_weights[start : start + size]
            )
            values_parts.append(chunk_values)
            accumulated.add(*chunk_grads)
        values = torch.cat(values_parts)
        row_grads, shared_grads = accumulated.result()
        grads = [grad for grad in (*row_grads, *shared_grads) if grad is not None]
        return (torch.sum(row_weights * values), values, *grads)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        arrays = inputs[4:]
        _, values, *grads = output
        ctx.mark_non_differentiable(values, *grads)
        ctx.set_materialize_grads(False)  # no zero (V, H) cotangent for the stored gradient outputs
        # Kept on ctx, not saved for backward: the backward pass scales them in place and hands
        # them over as the only reference, so that autograd adopts them as .grad instead of
        # copying them (a (V, H) copy of the weight's gradient otherwise). These outputs have no
        # grad_fn: no reference cycle.
        ctx.stored = [values, *grads]
        ctx.has_gradient = [_has_gradient(x) for x in arrays]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor, *_: Any) -> tuple[Any, ...]:
        if ctx.stored is None:
            raise RuntimeError("polyloss's fused linear_cross_entropy gradient can be taken once per forward pass")
        values, *grads = ctx.stored
        ctx.stored = ctx.non_differentiable = None  # mark_non_differentiable's references too
        stored = iter(grads)
        scaled = [next(stored).mul_(g) if has else None for has in ctx.has_gradient]
        return (None, None, None, values * g, *scaled)


def _int64(index: torch.Tensor) -> torch.Tensor:
    """Class indices as int64, the dtype torch's kernels take (labels of every integer dtype work,
    as in NumPy and JAX; int32 is what those frameworks make by default)."""
    return index if index.dtype == torch.int64 else index.long()


# -- collectives (torch.distributed): autograd functions whose backward is the forward's transpose


class _AllGather(torch.autograd.Function):
    """Concatenate every rank's rows; backward: each rank's slice gets the sum of every rank's
    gradient for it (an all-reduce then a slice: gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group, ctx.rank, ctx.rows = group, dist.get_rank(group), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        total = g.contiguous().clone()
        dist.all_reduce(total, group=ctx.group)
        return total[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows], None


class _SumAcross(torch.autograd.Function):
    """Sum over the ranks; backward: the identity (each rank's value is its own part of the sum)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return g, None


def _send_receive(x: torch.Tensor, group: Any, to: int, source: int) -> torch.Tensor:
    received = torch.empty_like(x)
    ops = [
        dist.P2POp(dist.isend, x.contiguous(), group=group, group_peer=to),
        dist.P2POp(dist.irecv, received, group=group, group_peer=source),
    ]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    return received


class _Shift(torch.autograd.Function):
    """The previous rank's ``x`` (one ring step); backward: the gradient goes back to it."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        rank, size = dist.get_rank(group), dist.get_world_size(group)
        ctx.group, ctx.next, ctx.previous = group, (rank + 1) % size, (rank - 1) % size
        return _send_receive(x, group, to=ctx.next, source=ctx.previous)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _send_receive(g, ctx.group, to=ctx.previous, source=ctx.next), None


class _RingSum(torch.autograd.Function):
    """``Backend.ring_sum``: the forward pass keeps no visiting block; the backward pass passes them
    around again and sends each block's accumulated gradient home."""

    @staticmethod
    def forward(blocks: RingBlocks, devices: Devices, n_local: int, *arrays: torch.Tensor) -> torch.Tensor:
        local, visiting = arrays[:n_local], arrays[n_local:]
        values = blocks.forward(local, visiting, True)
        for _ in range(devices.size - 1):
            visiting = tuple(devices.shift(x) for x in visiting)
            values = values + blocks.forward(local, visiting, False)
        return values

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.blocks, ctx.devices, ctx.n_local = inputs[:3]
        ctx.save_for_backward(*inputs[3:])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        arrays, shift = ctx.saved_tensors, ctx.devices.shift
        local, visiting = arrays[: ctx.n_local], arrays[ctx.n_local :]
        local_grads, travelling = ctx.blocks.backward(local, visiting, True, g)
        for _ in range(ctx.devices.size - 1):
            visiting = tuple(shift(x) for x in visiting)
            travelling = tuple(shift(t) for t in travelling)
            more_local, more_visiting = ctx.blocks.backward(local, visiting, False, g)
            local_grads = tuple(a + b for a, b in zip(local_grads, more_local, strict=True))
            travelling = tuple(a + b for a, b in zip(travelling, more_visiting, strict=True))
        home = tuple(shift(t) for t in travelling) if ctx.devices.size > 1 else travelling
        return (None, None, None, *local_grads, *home)


class _ProcessGroupDevices:
    """The ranks of a ``torch.distributed`` process group (:class:`polyloss.core._typing.Devices`)."""

    def __init__(self, group: Any) -> None:
        self.group = group
        self.size = dist.get_world_size(group)
        self._rank = dist.get_rank(group)

    def rank(self) -> int:
        return self._rank

    def check_same_rows(self, name: str, x: torch.Tensor) -> None:
        # all_gather and send/recv need equal shapes (gloo aborts the process otherwise). CPU tensors
        # only: on an accelerator, reading the counts would synchronise the device on every call.
        if x.device.type != "cpu":
            return
        counts = [torch.zeros(1, dtype=torch.int64) for _ in range(self.size)]
        dist.all_gather(counts, torch.tensor([x.shape[0]]), group=self.group)
        rows = [int(c) for c in counts]
        if len(set(rows)) > 1:
            raise ValueError(
                f"{name} must have the same number of rows on every rank of group "
                f"(torch.distributed's collectives need equal shapes), got {rows} by rank"
            )

    def all_gather(self, x: torch.Tensor) -> torch.Tensor:
        return _AllGather.apply(x, self.group)

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        return _SumAcross.apply(x, self.group)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        return _Shift.apply(x, self.group)


def _traced(x: torch.Tensor) -> bool:
    """No concrete values: under torch.compile, torch.func transforms or on the meta device."""
    return torch.compiler.is_compiling() or _is_functorch_wrapped(x) or x.is_meta


def _all_finite(x: torch.Tensor) -> bool:
    """Whether every value of a concrete tensor is finite, from one reduction: a sum is finite only
    if every term is (an overflowing sum of finite values answers False, the safe side)."""
    return bool(torch.isfinite(x.detach().sum()))


def _on_host(x: torch.Tensor) -> bool:
    """Values readable without synchronising an accelerator."""
    return x.device.type == "cpu"


def _bce_with_logits(
    logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor | None
) -> torch.Tensor | None:
    """The definition without its guards, for finite logits on CPU: p_w t softplus(-x) + (1 - t)
    softplus(x), softplus as -logsigmoid(-x) (one kernel each way). Not torch's
    ``binary_cross_entropy_with_logits``: its value cancels at x = -30, t = 0 (``x + softplus(-x)``)
    and its gradient ``sigmoid(x) - t`` at x = 30, t = 1 (1e-3 relative in float64), where the
    definition is exact. The guards (a zero coefficient times an infinite softplus is 0) matter
    at infinite logits only, which only an eager CPU tensor can be asked for without a device
    synchronisation; elsewhere the definition runs."""
    if not _on_host(logits) or _traced(logits) or bool(torch.isinf(logits).any()):
        return None
    positive = target if pos_weight is None else target * pos_weight
    return positive * -F.logsigmoid(logits) + (1.0 - target) * -F.logsigmoid(-logits)


class _KLTerms(torch.autograd.Function):
    """The definition's ``p log p - p log q`` terms (``0 log 0 = 0``; 0 where ``p == 0`` and
    ``log q = -inf``), with its derivatives written out. The first derivative in ``log q`` is
    ``-p`` (the definition's guard changes nothing there: p is 0 where it applies), so the
    backward pass computes no mask: under torch.compile, inductor's CPU code for the guard's
    boolean mask ran at about 4 ns an element (compiled kl_div differentiating ``log_q`` only, as
    training does: 3.5x F.kl_div's time with the definition, 0.9x with this, 4096x1000). A second
    derivative (``create_graph=True``)
    differentiates the guarded form. Used under torch.compile only: dynamo refuses a custom ``jvp``,
    which forward-mode AD (``torch.func.jvp``) needs, so elsewhere the definition runs."""

    generate_vmap_rule = True

    @staticmethod
    def forward(log_q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        zero = p == 0
        guarded = _guarded(log_q, zero)
        p_log_p = torch.where(zero, 0.0, p * torch.log(torch.where(zero, 1.0, p)))
        return p_log_p - torch.where(guarded, 0.0, p * torch.where(guarded, 0.0, log_q))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        log_q, p = ctx.saved_tensors
        grad_log_q = grad_p = None
        if ctx.needs_input_grad[0]:
            grad_log_q = -grad * (_exact_p(log_q, p) if torch.is_grad_enabled() else p)
        if ctx.needs_input_grad[1]:
            grad_p = grad * _d_terms_d_p(log_q, p)
        return grad_log_q, grad_p


def _guarded(log_q: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """Where ``p == 0`` and ``log q`` is not finite (``|x| < inf`` is False for inf and NaN)."""
    return zero & ~(torch.abs(log_q) < math.inf)


def _exact_p(log_q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``p``, 0 where guarded: the derivative in ``log q``, as a differentiable expression."""
    return torch.where(_guarded(log_q, p == 0), 0.0, p)


def _d_terms_d_p(log_q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``log p + 1 - log q``; the ``log p + 1`` is 0 at ``p == 0``, the ``log q`` 0 where guarded."""
    zero = p == 0
    d_p_log_p = torch.where(zero, 0.0, torch.log(torch.where(zero, 1.0, p)) + 1.0)
    return d_p_log_p - torch.where(_guarded(log_q, zero), 0.0, log_q)


def _kl_terms(log_q: torch.Tensor, p: torch.Tensor) -> torch.Tensor | None:
    """``F.kl_div(log_q, p, reduction="none")`` (``xlogy(p, p) - p * log_q``) where it is the
    definition: every log q finite (torch's 0 * -inf is NaN, the definition's 0), and, when p is
    differentiated, every p > 0 (at p = 0 torch's derivative in p is -inf, the definition's -log q).
    Both are read from one reduction each, on eager CPU tensors only; under torch.compile
    :class:`_KLTerms`; elsewhere the definition runs."""
    if torch.compiler.is_compiling():
        return _KLTerms.apply(log_q, p)
    if not _on_host(log_q) or _traced(log_q) or _traced(p) or not _all_finite(log_q):
        return None
    if p.requires_grad and p.numel() > 0 and not bool(p.detach().min() > 0):
        return None
    return F.kl_div(log_q, p, reduction="none")


def _cross_squared_distances(embeddings: torch.Tensor) -> torch.Tensor | None:
    """``torch.cdist`` without its matrix-product shortcut (explicit differences, exact 0 between
    coincident rows), squared: one kernel, no (N, N, D) temporaries (10x faster at N = 2048, D = 64
    on CPU). Eager only (its values only are used); traced, the chunked definition runs."""
    if _traced(embeddings) or embeddings.numel() == 0:
        return None
    distance = torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")
    return distance * distance


#: torch's fused kernels for the elementwise definitions that core passes to ``fused`` (one kernel
#: each way instead of several array-API passes), ``reduction="none"`` (the core reduces); None
#: where the kernel would not compute the definition for these arguments
_FUSED: dict[str, Callable[..., torch.Tensor | None]] = {
    "bce_with_logits": _bce_with_logits,
    "squared_error": lambda pred, target, reduction="none": F.mse_loss(pred, target, reduction=reduction),
    "absolute_error": lambda pred, target, reduction="none": F.l1_loss(pred, target, reduction=reduction),
    # torch's delta is a Python float: an array delta (a learnable one) runs the definition
    "huber": lambda pred, target, delta, reduction="none": (
        F.huber_loss(pred, target, reduction=reduction, delta=delta) if isinstance(delta, float) else None
    ),
    "smooth_l1": lambda pred, target, beta, reduction="none": F.smooth_l1_loss(
        pred, target, reduction=reduction, beta=beta
    ),
    "kl_terms": _kl_terms,
    "cross_squared_distances": _cross_squared_distances,
}
#: the kernels above that reduce themselves (torch's mean of no element is NaN: empty inputs are
#: reduced by core's ``reduce``)
_REDUCING = frozenset({"squared_error", "absolute_error", "huber", "smooth_l1"})


class _NativeCTC(torch.autograd.Function):
    """CTC's negative log-likelihood through torch's kernels (``aten::_ctc_loss`` and its backward:
    one pass each way instead of a Python step per frame), with polyloss's gradient: torch's
    backward returns the gradient with respect to the logits behind a ``log_softmax`` (it adds
    ``exp(log_probs)`` over each sample's frames), which is taken away here; an impossible sample
    (``inf``) gets a zero gradient, not torch's NaN. A second derivative (``create_graph=True``)
    differentiates the definition instead, which torch's kernel cannot."""

    @staticmethod
    def forward(
        ctx: Any,
        log_probs: torch.Tensor,
        targets: torch.Tensor,
        input_lengths: torch.Tensor,
        target_lengths: torch.Tensor,
        blank: int,
        definition: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        lengths = (input_lengths.long(), target_lengths.long())
        nll, log_alpha = torch.ops.aten._ctc_loss.Tensor(
            log_probs.transpose(0, 1), targets.long(), *lengths, blank, False
        )
        ctx.save_for_backward(log_probs, targets, *lengths, nll, log_alpha)
        ctx.blank, ctx.definition = blank, definition
        return nll

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        log_probs, targets, input_lengths, target_lengths, nll, log_alpha = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: a gradient that is itself differentiable
            with torch.enable_grad():
                (exact,) = torch.autograd.grad(ctx.definition(log_probs), log_probs, grad, create_graph=True)
            return exact, None, None, None, None, None
        native = torch.ops.aten._ctc_loss_backward.Tensor(
            grad, log_probs.transpose(0, 1), targets.long(), input_lengths, target_lengths, nll, log_alpha, ctx.blank
        ).transpose(0, 1)
        frames = torch.arange(log_probs.shape[1], device=log_probs.device)[None, :] < input_lengths[:, None]
        exact = native - log_probs.exp() * (frames * grad[:, None])[..., None]
        return torch.where(torch.isfinite(nll)[:, None, None], exact, 0.0), None, None, None, None, None


def _ctc_nll(
    definition: Callable[..., torch.Tensor],
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int,
) -> torch.Tensor | None:
    """:class:`_NativeCTC` for concrete (validated) float32/float64 inputs with at least one sample,
    frame and target column; elsewhere (torch.compile, torch.func, empty inputs) the definition."""
    usable = log_probs.dtype in (torch.float32, torch.float64) and 0 not in (*log_probs.shape, targets.shape[1])
    if not usable or _traced(log_probs) or _traced(targets):
        return None
    return _NativeCTC.apply(
        log_probs,
        targets,
        input_lengths,
        target_lengths,
        blank,
        lambda lp: definition(lp, targets, input_lengths, target_lengths, blank=blank),
    )


#: fused kernels that take the definition too (for what the kernel lacks, such as second derivatives)
_FUSED_WITH_DEFINITION: dict[str, Callable[..., torch.Tensor | None]] = {"ctc_nll": _ctc_nll}


class TorchBackend(ArrayAPIBackend):
    has_autodiff = True

    def __init__(self) -> None:
        super().__init__("torch", xp, (torch.Tensor,))
        self._half = (torch.float16, torch.bfloat16)

    # -- input handling --------------------------------------------------------
    def compute_dtype(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() if x.dtype in self._half else x

    def is_opaque(self, x: torch.Tensor) -> bool:
        return _traced(x) or not (_on_host(x) or accelerator_values_checked())

    def host_values(self, x: torch.Tensor) -> list[Any]:
        return x.detach().reshape(-1).tolist()

    def int_range(self, x: torch.Tensor) -> tuple[int, int]:
        low, high = torch.aminmax(x)
        return int(low), int(high)

    def float_range(self, x: torch.Tensor) -> tuple[float, float]:
        low, high = torch.aminmax(x.detach())
        return float(low), float(high)

    def all_in(self, x: torch.Tensor, values: tuple[float, ...]) -> bool:
        x = x.detach()
        allowed = x == values[0]
        for value in values[1:]:
            allowed |= x == value
        return bool(allowed.all())

    # -- primitives: native kernels -------------------------------------------
    def log_softmax(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.log_softmax(x, dim=axis)

    def softmax(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.softmax(x, dim=axis)

    def logsumexp(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.logsumexp(x, dim=axis)

    def softplus(self, x: torch.Tensor) -> torch.Tensor:
        # one kernel each way, exact (log_sigmoid is min(x, 0) - log1p(exp(-|x|))), twice
        # differentiable. Not F.softplus, which returns x itself above 20 (off by up to 2e-9 in
        # float64), nor torch.logaddexp, whose second derivative is NaN at -1000.
        return -F.logsigmoid(-x)

    def relu(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)  # derivative 0 at 0; torch.where is ~15x slower than relu on CPU

    def abs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.abs(x)  # derivative sign(x): 0 at 0

    def fused(
        self, kernel: str, composed: Callable[..., Any], *arrays: Any, reduction: str = "none", **params: Any
    ) -> torch.Tensor:
        native = _FUSED.get(kernel)
        if native is not None and reduction != "none" and kernel in _REDUCING and arrays[0].numel() > 0:
            reduced = native(*arrays, reduction=reduction, **params)
            if reduced is not None:
                return reduced
        out = None if native is None else native(*arrays, **params)
        if kernel in _FUSED_WITH_DEFINITION:
            out = _FUSED_WITH_DEFINITION[kernel](lambda *a, **p: composed(self, *a, **p), *arrays, **params)
        return reduce(xp, composed(self, *arrays, **params) if out is None else out, reduction)

    def sigmoid(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def softmax_cross_entropy(
        self,
        logits: torch.Tensor,
        index: torch.Tensor,
        axis: int,
        reduction: str = "none",
        valid: torch.Tensor | None = None,
        kept: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # torch's fused log_softmax + nll kernel, reduction included; classes sit on dim 1
        # (or 0 when unbatched). ignore_index=-100 never matches an index (in range) but the
        # samples not kept, which torch's kernel skips in value and gradient.
        if kept is not None and not (_on_host(logits) and not _traced(logits) and _all_finite(logits)):
            # a -inf (or NaN) row, even a skipped one, makes log_softmax's gradient NaN there: the
            # definition's masked rows (and no host read of the logits off eager CPU)
            logits = self._kept_rows(logits, axis, kept)
        class_dim = 1 if logits.ndim > 1 else 0
        if logits.ndim > 1 and axis != 1:
            logits = torch.movedim(logits, axis, 1)
        if valid is not None:
            # NaN through the logits rows: inductor keeps one fused kernel (a where on the
            # output split it, 1.4x slower at 4096x1000).
            nan_if_bad = torch.where(valid, 0.0, float("nan")).to(logits.dtype)
            logits = logits + nan_if_bad.unsqueeze(class_dim)
        if kept is None:
            return F.cross_entropy(logits, _int64(index), reduction=reduction)
        index = torch.where(kept, _int64(index), -100)
        if reduction != "mean":
            return F.cross_entropy(logits, index, reduction=reduction)
        # torch's mean of no kept sample is 0/0: the sum over the count, 0 when none is kept
        count = kept.sum().to(logits.dtype)
        return F.cross_entropy(logits, index, reduction="sum") / count.clamp(min=1.0)

    def take_along_axis(self, x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
        # gather, not take_along_dim: the latter broadcasts and wraps negative indices (slower, and
        # silent); indices here are already in range.
        return torch.gather(x, axis, _int64(indices))

    def cumulative_sum(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.cumsum(x, dim=axis)  # array-api-compat's wrapper calls an lru_cache dynamo warns about

    def stop_gradient(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()

    def scan(self, step: Callable[..., Any], carry: Any, xs: tuple[torch.Tensor, ...]) -> Any:
        # unbind once: indexing xs[i] per step makes each backward step write a full-size
        # gradient of xs (quadratic in the length; 3.4x slower for CTC at T=100)
        for inputs in zip(*(torch.unbind(x, 0) for x in xs), strict=True):
            carry = step(carry, inputs)
        return carry

    def grad_of_sum(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        # torch.func.grad, not autograd.grad: it composes with torch.func.vmap and torch.compile,
        # and its result stays differentiable by ordinary autograd (the critic's parameters).
        return torch.func.grad(lambda v: fn(v).sum())(x)

    def uniform(self, key_or_generator: Any, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        if key_or_generator is not None and not isinstance(key_or_generator, torch.Generator):
            raise TypeError(f"key_or_generator must be a torch.Generator or None, got {key_or_generator!r}")
        return torch.rand(shape, generator=key_or_generator, dtype=like.dtype, device=like.device)

    def device(self, x: torch.Tensor) -> torch.device:
        return x.device  # array_api_compat.device's type probing warns under dynamo

    devices_keyword = "group"

    def named_devices(self, group: Any) -> Devices:
        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError(
                f"group={group!r} needs torch.distributed initialised: call "
                "torch.distributed.init_process_group first (or pass group=None for one device)"
            )
        if not isinstance(group, dist.ProcessGroup):
            raise TypeError(
                f"group must be a torch.distributed ProcessGroup (e.g. torch.distributed.group.WORLD), got {group!r}"
            )
        return _ProcessGroupDevices(group)

    def ring_sum(self, blocks: RingBlocks, devices: Devices, local: Chunk, visiting: Chunk) -> torch.Tensor:
        if not (torch.is_grad_enabled() and any(x.requires_grad for x in (*local, *visiting))):
            return super().ring_sum(blocks, devices, local, visiting)
        return _RingSum.apply(blocks, devices, len(local), *local, *visiting)

    def rows_in_chunks(
        self,
        chunks: RowChunks,
        rows: Chunk,
        shared: Shared,
        chunk_size: int,
        row_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        arrays = (*rows, *shared)
        if not (torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in (*arrays, row_weights))):
            return super().rows_in_chunks(chunks, rows, shared, chunk_size, row_weights)
        if row_weights is None:
            return _ChunkedValues.apply(chunks, chunk_size, len(rows), *arrays)[0]
        return _ChunkedWeightedSum.apply(chunks, chunk_size, len(rows), row_weights, *arrays)[0]


BACKEND: Backend = TorchBackend()  # mypy checks the class against the core's protocol
