"""The harness: what the checks need from a framework beyond the runtime primitives.

One module per framework, and only that module imports it: :mod:`.numpy`,
:mod:`.strict` (array-api-strict), :mod:`.torch`, :mod:`.jax`. Each exposes
``HARNESS``, a :class:`~polyloss.verify.harness.base.Harness` wrapping the
runtime backend of ``polyloss.backends`` with the hooks the checks use: array
conversion, gradients, finite differences, vmap, jit/compile, the modules handed
to references, and :meth:`~polyloss.verify.harness.base.Harness.scope`, the
process state the checks need (JAX's float64 mode, dynamo's recompile limits),
set for the duration of a run and restored after. A hook a framework lacks raises
:class:`~polyloss.verify.harness.base.NotSupported`.
"""

#: the harness module of each backend, imported on demand (a framework may be missing)
HARNESS_MODULES = {
    "numpy": "polyloss.verify.harness.numpy",
    "array_api_strict": "polyloss.verify.harness.strict",
    "torch": "polyloss.verify.harness.torch",
    "jax": "polyloss.verify.harness.jax",
}
