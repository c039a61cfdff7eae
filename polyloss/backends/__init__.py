"""Backend bindings: one module per framework; only that module imports it.

``base`` holds the primitive set written against the array API; ``numpy`` and
``strict`` use it as is; ``torch`` and ``jax`` replace primitives with native
kernels. Each framework module also carries the few harness hooks (gradients,
jit, vmap, compile) that ``polyloss.verify.conformance`` needs.
"""
