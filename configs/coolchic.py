"""COOL-CHIC overfitted image codec: presets for ``encode.py --config configs/coolchic.py:<preset>``.

Presets:

* ``fast``: small networks and a 300-step recipe: demo, tests and smoke runs (seconds on CPU).
* ``lop`` / ``mop`` / ``hop``: decoding complexity of Cool-chic 5's LOP / MOP / HOP
  (``nlc_jax.codecs.coolchic.mac_per_pixel`` reports the exact MAC/pixel of any config;
  ``hop`` ≈ 1.9k MAC/pixel) with Cool-chic's 10k-iteration intra recipe.

``lmbda`` follows Cool-chic: ``loss = MSE([0, 1] RGB) + lmbda · bpp``. Any field can be
overridden on the command line, e.g. ``--config.lmbda=0.004 --config.recipe.n_itr=2000``.
"""

from ml_collections import config_dict

# name: (arm context, arm hidden layers, synthesis layers)
ARCHS = {
    "fast": (8, 1, ("16-1-linear-relu", "3-1-linear-none", "3-3-residual-none")),
    "lop": (8, 2, ("8-1-linear-relu", "3-1-linear-none", "3-3-residual-none")),
    "mop": (16, 2, ("16-1-linear-relu", "3-1-linear-none", "3-3-residual-relu",
                    "3-3-residual-none")),
    "hop": (24, 2, ("40-1-linear-relu", "3-1-linear-none", "3-3-residual-relu",
                    "3-3-residual-none")),
}
# name: (total iterations, warm-up iterations per stage (0: Cool-chic's rule, 50 / 100 / 200 / 400
# for n_itr below 4k / 9k / 12k / above, so --config.recipe.n_itr=2000 works), final STE
# iterations, candidates)
RECIPES = {
    "fast": (300, 30, 50, 2),
    "lop": (10_000, 0, 500, 5),
    "mop": (10_000, 0, 500, 5),
    "hop": (10_000, 0, 500, 5),
}


def get_config(preset: str = "hop") -> config_dict.ConfigDict:
    """The config of a preset (``fast``, ``lop``, ``mop``, ``hop``)."""
    if preset not in ARCHS:
        raise ValueError(f"unknown coolchic preset {preset!r}; choose one of {', '.join(ARCHS)}")
    context, hidden, synthesis = ARCHS[preset]
    n_itr, warmup, final, candidates = RECIPES[preset]
    c = config_dict.ConfigDict()
    c.codec = "coolchic"
    c.preset = preset
    c.lmbda = 0.001

    c.model = config_dict.ConfigDict()
    c.model.n_levels = 7               # latent grids at 1/1 … 1/64 resolution, one channel each
    c.model.arm_context = context      # causal neighbours in the ARM's spatial context
    c.model.arm_hidden_layers = hidden  # residual Linear+ReLU layers of width arm_context
    c.model.synthesis = synthesis      # "<out>-<kernel>-<linear|residual>-<relu|none>"
    c.model.encoder_gain = 0.0         # latent = round(gain · parameter); 0: 16, 20 or 24 by λ

    c.recipe = config_dict.ConfigDict()
    c.recipe.n_itr = n_itr             # total iterations (warm-up + main + final)
    c.recipe.warmup_steps = warmup     # per warm-up stage (all, then the best 2); 0: by n_itr
    c.recipe.final_steps = final       # hard quantization with the straight-through estimator
    c.recipe.n_candidates = candidates
    c.recipe.lr = 1e-2
    c.recipe.final_lr = 1e-4
    c.recipe.min_lr = 1e-5
    c.recipe.grad_clip = 1e-1          # global-norm clip on network gradients
    c.recipe.temperature = (0.35, 0.08)  # soft-round temperature, linear over the main phase
    c.recipe.noise = (0.76, 0.52)        # uniform noise width (std 0.22 → 0.15), linear
    return c
