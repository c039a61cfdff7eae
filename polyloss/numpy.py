"""polyloss losses for NumPy arrays: the float64 reference, no autodiff.

Every loss of the catalogue, bound once to the numpy backend. See
``python -m polyloss list`` and ``docs/`` for the catalogue.
"""

from polyloss._binding import export
from polyloss.backends.numpy import BACKEND

__all__ = export(globals(), BACKEND)
