"""The proof: what shows that every loss is right, kept apart from what a user imports.

``polyloss.core`` (the maths), ``polyloss.backends`` (the primitives) and the public
namespaces (``polyloss.torch``, ``polyloss.jax``, ``polyloss.numpy``) never import this
package. It holds the declarative specs of every loss (:mod:`polyloss.verify.specs`:
inputs, references, edge cases), the checks derived from them (run by the test-suite
and by ``python -m polyloss verify``) and the documentation generator.
"""
