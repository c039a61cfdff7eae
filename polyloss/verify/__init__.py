"""The proof: what shows that every loss is right, kept apart from what a user imports.

``polyloss.core`` (the maths), ``polyloss.backends`` (the primitives) and the public
namespaces (``polyloss.torch``, ``polyloss.jax``, ``polyloss.numpy``) never import this
package. It holds the declarative specs of every loss (:mod:`polyloss.verify.specs`:
inputs, references, edge cases), the harness per framework (:mod:`.harness`), the checks
derived from the specs (:mod:`.environment`, :mod:`.cases`, :mod:`.compare`,
:mod:`.checks`, :mod:`.edge_cases`, :mod:`.run`; run by the test-suite and by
``python -m polyloss verify``, whose output :mod:`.report` prints), what
``polyloss.testing`` re-exports (:mod:`.agreement`, :mod:`.strategies`) and the
documentation generator (:mod:`.docs`).
"""
