"""Backend bindings: one module per framework; only that module imports it.

``base`` holds the primitive set written against the array API; ``numpy`` and
``strict`` use it as is; ``torch`` and ``jax`` replace primitives with native
kernels. Backends hold the runtime primitives only: the hooks the checks need
(conversion, gradients, jit, vmap, compile) live in ``polyloss.verify.harness``.
"""
