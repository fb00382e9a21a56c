"""COOL-CHIC overfitted image codec: presets for ``nlc-encode --config coolchic:<preset>``.

Presets:

* ``fast``: small networks and a short recipe: ``make demo``, tests and smoke runs.
* ``lop`` / ``mop`` / ``hop``: Cool-chic 5.0.1's LOP / MOP / HOP decoders (spatial context,
  inter-feature context, hyper-latents, stabilisers; ``nlc_jax.codecs.coolchic.mac_per_pixel``
  reports the exact MAC/pixel of any config, ``hop`` ≈ 1.9k) with its 10k-iteration intra
  recipe (SOAP for the networks, Gaussian noise, a hard-rounding final phase, weight RDOQ).

``lmbda`` follows Cool-chic: ``loss = MSE([0, 1] RGB) + lmbda · bpp``. Any field can be
overridden on the command line, e.g. ``--config.lmbda=0.004 --config.recipe.n_itr=2000``; the
pre-5.0 design is ``--config.model.n_hyper=0 --config.model.ifce_levels=0
--config.model.arm_stabiliser=False --config.model.synthesis_stabiliser=False
--config.recipe.optimizer=adam --config.model.edge_padding=False
--config.model.weight_coding=exp-golomb`` (see ``docs/coolchic.md``
for what each part buys).
"""

from ml_collections import config_dict

from nlc_jax.configs.common import preset_entries, recipe_block

# name: (spatial context, hidden layers, IFCE features, synthesis layers)
ARCHS = {
    "fast": (8, 1, 2, ("12-1-linear-relu", "3-1-linear-none", "3-3-residual-none")),
    "lop": (6, 2, 2, ("8-1-linear-relu", "3-1-linear-none", "3-3-residual-none")),
    "mop": (10, 2, 4, ("16-1-linear-relu", "3-1-linear-none", "3-3-residual-relu",
                       "3-3-residual-none")),
    "hop": (14, 2, 6, ("48-1-linear-relu", "3-1-linear-none", "3-3-residual-relu",
                       "3-3-residual-none")),
}
# name: (total iterations, warm-up iterations per stage (0: Cool-chic's rule, 50 / 100 / 200 / 400
# for n_itr below 4k / 9k / 12k / above, so --config.recipe.n_itr=2000 works), final
# iterations, candidates)
RECIPES = {
    "fast": (500, 30, 50, 2),
    "lop": (10_000, 0, 500, 5),
    "mop": (10_000, 0, 500, 5),
    "hop": (10_000, 0, 500, 5),
}


def get_config(preset: str = "hop") -> config_dict.ConfigDict:
    """The config of a preset (``fast``, ``lop``, ``mop``, ``hop``)."""
    arch, recipe = preset_entries("coolchic", preset, ARCHS, RECIPES)
    context, hidden, ifce, synthesis = arch
    n_itr, warmup, final, candidates = recipe
    c = config_dict.ConfigDict()
    c.codec = "coolchic"
    c.preset = preset
    c.lmbda = 0.001
    # per-image decoder size: presets to fit for every image (e.g. "lop,mop,hop"); the file
    # with the lowest MSE + λ·bpp is kept. Empty: this preset's decoder only.
    c.arch_candidates = ""

    c.model = config_dict.ConfigDict()
    c.model.n_levels = 7               # latent grids at 1/1 … 1/64 resolution, one channel each
    c.model.n_hyper = 3                # hyper-latent grids, read by the entropy model only
    c.model.hyper_start = 0            # finest hyper level; 0: 4 / 5 / 6 below 1 / 3 Mpx / above
    c.model.arm_context = context      # causal neighbours in the ARM's spatial context
    c.model.ifce_levels = 3            # finest grids with an inter-feature context (IFCE)
    c.model.ifce_features = ifce       # IFCE outputs appended to their ARM context
    c.model.arm_hidden_layers = hidden  # residual layers of the context's width
    c.model.arm_stabiliser = True      # parallel linear branch in the ARM
    c.model.synthesis = synthesis      # "<out>-<kernel>-<linear|residual>-<relu|none>"
    c.model.synthesis_stabiliser = True  # parallel 1×1 linear branch in the synthesis
    c.model.edge_padding = True        # upsampling and 3×3 layers replicate edges (Cool-chic)
    c.model.encoder_gain = 0.0         # latent = round(gain · parameter); 0: 16, 20 or 24 by λ
    # network weights: "range" (steps per layer, range coded; header version 6), "exp-golomb"
    # (steps per module, Exp-Golomb codes as Cool-chic; version 5) or "auto" (per file, the one
    # of lower cost after the step search)
    c.model.weight_coding = "auto"

    c.recipe = recipe_block(n_itr, warmup, final, candidates)
    c.recipe.final_schedule = "cosine"   # final_lr cosine-decayed to min_lr
    c.recipe.final_quantizer = "hard"    # "hard": latents fixed, networks tuned; "ste"
    c.recipe.temperature = (0.35, 0.08)  # soft-round temperature, linear over the main phase
    c.recipe.noise_type = "gaussian"     # warm-ups: std (-0.432·log10 λ + 0.747) / 10
    c.recipe.noise = (0.22, 0.15)        # noise std, linear over the main phase
    c.recipe.optimizer = "soap"          # networks: "soap" or "adam"
    c.recipe.soap_betas = (0.95, 0.95)
    c.recipe.weight_decay = 0.01         # decoupled, networks only
    c.recipe.precondition_frequency = 10  # SOAP eigenbasis refresh (every step in warm-ups)
    c.recipe.latent_betas = (0.9, 0.999)
    c.recipe.latent_betas_warmup = (0.725, 0.97)
    # greedy RD refinement of the quantized weights (0: off). Off in `fast`: on the demo's three
    # 256×256 samples it saved 0.1–0.2 % of the rate (+0.01–0.02 dB) for 4× the coding time.
    c.recipe.rdoq_passes = 0 if preset == "fast" else 1
    return c
