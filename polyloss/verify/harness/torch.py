"""The PyTorch harness: autograd, gradcheck, torch.func.vmap and torch.compile for the checks.

The only module of the harness that imports torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from polyloss.backends.torch import BACKEND as TORCH_BACKEND
from polyloss.verify.harness.base import Harness, of_inputs

_HALF = (torch.float16, torch.bfloat16)

#: dynamo's recompile limits during a run. The checks compile one closure per (loss, parameters,
#: reduction); the closures share a code object, so dynamo's defaults (8 recompilations per code
#: object, 256 over the process) would be hit, and with fullgraph=True that is an error
#: (FailOnRecompileLimitHit): a whole test run compiles several hundred.
RECOMPILE_LIMIT = 4096


class TorchHarness(Harness):
    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """dynamo's recompile limits raised to at least :data:`RECOMPILE_LIMIT`, restored after."""
        config = torch._dynamo.config
        with config.patch(
            recompile_limit=max(config.recompile_limit, RECOMPILE_LIMIT),
            accumulated_recompile_limit=max(config.accumulated_recompile_limit, RECOMPILE_LIMIT),
        ):
            yield

    def asarray(self, value: Any, dtype: str | None = None) -> torch.Tensor:
        if dtype == "bfloat16":
            return torch.as_tensor(np.asarray(value, dtype="float32")).to(torch.bfloat16)
        return torch.as_tensor(np.asarray(value, dtype=dtype))

    def to_numpy(self, x: torch.Tensor) -> np.ndarray:
        x = x.detach()
        if x.dtype in _HALF:
            x = x.float()
        return x.cpu().numpy()

    def reference_modules(self) -> SimpleNamespace:
        return SimpleNamespace(torch=torch, F=F, np=np)

    def value_and_grad(
        self, fn: Callable[..., Any], arrays: Sequence[Any], argnums: Sequence[int], cotangent: Any = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        inputs = [a.detach().clone().requires_grad_(i in argnums) for i, a in enumerate(arrays)]
        out = fn(*inputs)
        scalar = out.sum() if cotangent is None else (out * torch.as_tensor(cotangent, dtype=out.dtype)).sum()
        raw = torch.autograd.grad(scalar, [inputs[i] for i in argnums], allow_unused=True)
        grads = [torch.zeros_like(inputs[i]) if g is None else g for g, i in zip(raw, argnums, strict=True)]
        return self.to_numpy(out), [self.to_numpy(g) for g in grads]

    def check_finite_differences(
        self, fn: Callable[..., Any], arrays: Sequence[Any], argnums: Sequence[int], order: int, fast: bool = False
    ) -> None:
        wrt = of_inputs(fn, arrays, argnums)
        diff = [arrays[i].detach().clone().requires_grad_(True) for i in argnums]
        torch.autograd.gradcheck(wrt, diff, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=True, fast_mode=fast)
        if order >= 2:
            torch.autograd.gradgradcheck(
                wrt, diff, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=True, fast_mode=fast
            )

    def vmap(self, fn: Callable[..., Any], in_axes: Sequence[int | None]) -> Callable[..., Any]:
        return torch.func.vmap(fn, in_dims=tuple(in_axes))

    def compile(self, fn: Callable[..., Any], compiler: str = "inductor") -> Callable[..., Any]:
        """``torch.compile(fn, fullgraph=True)``; ``compiler="aot_eager"`` traces the same graphs
        (dynamo, then AOTAutograd's forward and backward) and runs them without inductor's codegen:
        about 0.8 s a loss instead of 5-7 s with a cold inductor cache. Call the result inside
        :meth:`scope` (the checks do): it recompiles more often than dynamo's default limits allow."""
        return torch.compile(fn, fullgraph=True, dynamic=False, backend=compiler)


HARNESS = TorchHarness(TORCH_BACKEND)
