"""Neural-network layers shared by learned codecs (GDN, bounded reparameterisations)."""

from nlc_jax.layers.gdn import GDN, lower_bound, nonneg_init, nonneg_value

__all__ = ["GDN", "lower_bound", "nonneg_init", "nonneg_value"]
