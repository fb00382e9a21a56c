"""Noise-to-Latent (latents generated from seeded noise): presets for
``nlc-encode --config noise2latent:<preset>``.

The paper (Lin et al., arXiv 2511.08009) gives no layer sizes, pyramid depth or schedule that we
could use, so every value here is ours (``docs/noise2latent.md`` explains each):

* ``fast``: small per-level GPPs (8 / 8 / 8 / 12 / 12 / 8 / 8 wide) and COOL-CHIC ``fast``'s
  synthesis, a 300-step recipe: tests, demo, CPU smoke runs.
* ``full``: COOL-CHIC's 7-level pyramid and HOP-like synthesis (40-wide 1×1, two 3×3 residual
  layers), per-level 3-layer GPPs 16 / 16 / 24 / 24 / 24 / 16 / 16 wide, Cool-chic's
  10k-iteration recipe with 5 seed candidates.

``lmbda`` follows Cool-chic: ``loss = MSE([0, 1] RGB) + lmbda · bpp`` (bpp = the networks' bits
per pixel: nothing else is sent). Override any field on the command line, e.g.
``--config.recipe.n_itr=2000 --config.model.conditional=False``.
"""

from ml_collections import config_dict

from nlc_jax.configs.common import preset_entries, recipe_block

GPP = ("W-3-linear-relu", "W-3-residual-relu", "2-1-linear-none")  # W: the level's width
# name: (noise channels, GPP width per level (level 0 = full resolution first), synthesis)
ARCHS = {
    "fast": (2, (8, 8, 8, 12, 12, 8, 8),
             ("16-1-linear-relu", "3-1-linear-none", "3-3-residual-none")),
    "full": (2, (16, 16, 24, 24, 24, 16, 16),
             ("40-1-linear-relu", "3-1-linear-none", "3-3-residual-relu", "3-3-residual-none")),
}
# name: (total iterations, warm-up iterations per stage (0: Cool-chic's rule), final STE
# iterations, candidates = seeds tried)
RECIPES = {
    "fast": (300, 30, 50, 2),
    "full": (10_000, 0, 500, 5),
}


def get_config(preset: str = "full") -> config_dict.ConfigDict:
    """The config of a preset (``fast``, ``full``)."""
    arch, recipe = preset_entries("noise2latent", preset, ARCHS, RECIPES)
    noise_channels, widths, synthesis = arch
    n_itr, warmup, final, candidates = recipe
    c = config_dict.ConfigDict()
    c.codec = "noise2latent"
    c.preset = preset
    c.lmbda = 0.001
    c.init_log2_step = -7.0            # initial quantization step 2^-7 of every weight tensor

    c.model = config_dict.ConfigDict()
    c.model.n_levels = 7               # noise / latent grids at 1/1 … 1/64 resolution
    c.model.noise_channels = noise_channels  # noise channels per level fed to the GPP
    c.model.conditional = True         # GPP of level i also sees the upsampled latent i+1
    c.model.gpp = GPP                  # per-level GPP layers, "W" = the level's width; ends in 2
    c.model.gpp_widths = widths        # one per level (level 0 first), or one for all levels
    c.model.synthesis = synthesis      # COOL-CHIC layer specs, ends in 3

    c.recipe = recipe_block(n_itr, warmup, final, candidates)  # final: STE; candidates: seeds
    return c
