"""Optimizers the fitting recipes use that optax does not provide."""
