"""CLRIC (COOL-CHIC in a VAE's latent space): presets for
``nlc-encode --config clric:<preset>``.

Presets:

* ``fast``: small synthesis and a 300-step recipe: tests, demo, CPU benchmarks.
* ``paper``: the paper's decoder and recipe — 7 latent grids, ARM with 8 causal neighbours and
  two hidden layers of 8, bicubic-initialised 8-tap upsampling, 4 synthesis layers ending in the
  latent's channels; 15,900 iterations: 5 candidates × 400 warm-up, the best 2 × 400 more, then
  the main phase (cosine-decaying lr from 1e-2) and 500 straight-through final steps.

``lmbda``: ``loss = MSE(latent) + lmbda · bpp`` with bpp per *image* pixel. The latent's scale is
the autoencoder's (TAEF2: std ≈ 0.86 per channel), so λ is on a different scale from COOL-CHIC's
pixel λ; for TAEF2 useful values lie in about 0.03 … 1 (see ``docs/clric.md``).
``synthesis`` layer specs are COOL-CHIC's; ``C`` stands for the latent channels of the
autoencoder (32 for TAEF2, 4 for SD VAEs).
"""

from ml_collections import config_dict

from nlc_jax.configs.common import preset_entries, recipe_block

# name: (arm context, arm hidden layers, synthesis layers)
ARCHS = {
    "fast": (8, 2, ("16-1-linear-relu", "16-3-residual-relu", "C-1-linear-none")),
    "paper": (8, 2, ("16-1-linear-relu", "16-1-linear-relu", "16-3-residual-relu",
                     "C-1-linear-none")),
}
# name: (total iterations, warm-up iterations per stage, final STE iterations, candidates)
RECIPES = {
    "fast": (300, 30, 50, 2),
    "paper": (15_900, 400, 500, 5),
}


def get_config(preset: str = "paper") -> config_dict.ConfigDict:
    """The config of a preset (``fast``, ``paper``)."""
    arch, recipe = preset_entries("clric", preset, ARCHS, RECIPES)
    context, hidden, synthesis = arch
    n_itr, warmup, final, candidates = recipe
    c = config_dict.ConfigDict()
    c.codec = "clric"
    c.preset = preset
    c.lmbda = 0.1

    c.autoencoder = "taef2"            # nlc_jax.autoencoders.load name or path
    c.weights_dir = ""                 # "" = $NLC_WEIGHTS_DIR, else ../shared/weights
    c.autoencoder_dtype = "float32"    # the VAE inside the fit: float32 or bfloat16
    c.pixel_weight = 0.0               # > 0 adds pixel_weight · MSE(VAE-decode(latent), image)

    c.model = config_dict.ConfigDict()
    c.model.n_levels = 7               # latent grids at 1/1 … 1/64 of the VAE latent's size
    c.model.arm_context = context      # causal neighbours in the ARM's spatial context
    c.model.arm_hidden_layers = hidden  # residual Linear+ReLU layers of width arm_context
    c.model.synthesis = synthesis      # "<out|C>-<kernel>-<linear|residual>-<relu|none>"
    c.model.encoder_gain = 16.0        # latent = round(gain · parameter) (fixed: λ is not pixel λ)

    c.recipe = recipe_block(n_itr, warmup, final, candidates)  # final: STE rounding
    c.recipe.temperature = (0.35, 0.08)  # soft-round temperature, linear over the main phase
    c.recipe.noise = (0.76, 0.52)        # uniform noise width, linear
    return c
