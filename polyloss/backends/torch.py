"""PyTorch backend: native fused kernels for the primitive set.

The only module (with ``polyloss/torch.py``) that imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat.torch as xp
import torch
import torch.nn.functional as F

from polyloss.backends.base import ArrayAPIBackend
from polyloss.core._typing import Backend

_is_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


class TorchBackend(ArrayAPIBackend):
    has_autodiff = True

    def __init__(self) -> None:
        super().__init__("torch", xp, (torch.Tensor,))
        self._half = (torch.float16, torch.bfloat16)

    # -- input handling --------------------------------------------------------
    def compute_dtype(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() if x.dtype in self._half else x

    def is_traced(self, x: torch.Tensor) -> bool:
        return torch.compiler.is_compiling() or _is_functorch_wrapped(x) or x.is_meta

    def host_values(self, x: torch.Tensor) -> list[Any]:
        return x.detach().reshape(-1).tolist()

    def int_range(self, x: torch.Tensor) -> tuple[int, int]:
        low, high = torch.aminmax(x)
        return int(low), int(high)

    def float_range(self, x: torch.Tensor) -> tuple[float, float]:
        low, high = torch.aminmax(x.detach())
        return float(low), float(high)

    # -- primitives: native kernels -------------------------------------------
    def log_softmax(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.log_softmax(x, dim=axis)

    def softmax(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.softmax(x, dim=axis)

    def logsumexp(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return torch.logsumexp(x, dim=axis)

    # softplus: the array-API primitive of the base class. Not F.softplus, which returns
    # x itself above 20 (off by up to 2e-9, seen in float64 parity), nor torch.logaddexp,
    # whose second derivative is NaN at -1000.

    def sigmoid(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def softmax_cross_entropy(
        self,
        logits: torch.Tensor,
        index: torch.Tensor,
        axis: int,
        reduction: str = "none",
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # torch's fused log_softmax + nll kernel, reduction included; classes sit on dim 1
        # (or 0 when unbatched). ignore_index=-100 never matches: index is in range.
        class_dim = 1 if logits.ndim > 1 else 0
        if logits.ndim > 1 and axis != 1:
            logits = torch.movedim(logits, axis, 1)
        if valid is not None:
            # NaN through the logits rows: inductor keeps one fused kernel (a where on the
            # output split it, 1.4x slower at 4096x1000).
            nan_if_bad = torch.where(valid, 0.0, float("nan")).to(logits.dtype)
            logits = logits + nan_if_bad.unsqueeze(class_dim)
        return F.cross_entropy(logits, index, reduction=reduction)

    def take_along_axis(self, x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
        # gather, not take_along_dim: the latter broadcasts and wraps negative indices (slower, and
        # silent); indices here are already in range.
        return torch.gather(x, axis, indices)

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


BACKEND: Backend = TorchBackend()  # mypy checks the class against the core's protocol
