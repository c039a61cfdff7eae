"""polyloss: loss functions written once against the array API, bound to
PyTorch (``polyloss.torch``), JAX (``polyloss.jax``) and NumPy (``polyloss.numpy``).

``import polyloss`` imports neither torch nor jax; import the namespace you use.
"""

from polyloss.core._checks import checks

__version__ = "0.1.0"

__all__ = ["__version__", "checks"]
