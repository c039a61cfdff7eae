"""polyloss losses for JAX arrays (jit, vmap, grad).

Every loss of the catalogue, bound once to the jax backend. See
``python -m polyloss list`` and ``docs/`` for the catalogue.
"""

from polyloss._binding import export
from polyloss.backends.jax import BACKEND

__all__ = export(globals(), BACKEND)
