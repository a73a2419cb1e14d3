"""scale-transfer: Bayesian analysis of how pre-training scale transfers downstream."""

__version__ = "0.1.0"
