"""The lab: measures the package; the library never imports it.

Sample-size study (:mod:`.study`), held-out validation (:mod:`.validation`), calibration
(:mod:`.calibration`), benchmark (:mod:`.bench`) and the JAX batch path (:mod:`.batch`).
These modules read posteriors made by the library; only the command line reaches into them.
"""
