"""Rate-variable diffusion codec (``docs/rvdiff.md``): training and coding config.

Presets (``--config rvdiff:<preset>``):

* ``tiny``: 8 hyper channels, U-Net width 16 with one level, 64×64 crops: tests and smoke runs.
* ``cpu``: 64 hyper channels, U-Net width 64 × (1, 2), 128×128 crops, batch 8, 6000 steps:
  trainable on this 2-core CPU in a few hours (not yet trained here).
* ``paper``: 192 hyper channels, U-Net width 128 × (1, 2, 4), 2 blocks per level, 256×256
  crops, batch 16, 500k steps at lr 1e-4: for accelerators (sizes are ours; the paper's are not
  public).

The latent space is ``autoencoder`` (default ``taef2``: 32 channels, 8× down; any
``nlc_jax.autoencoders.load`` name or path, e.g. an SD-VAE folder). Each training example draws
``t ~ U[0, 1]``; ``λ(t)`` falls geometrically over ``lmbda_range`` (loss ``bpp + λ(t) · D``, D
the latent MSE of x̂₀ per element). Coding: ``rate`` = ``t`` (0 highest rate, 1 lowest),
``steps`` = sampler steps N (0: plain hyperprior decode), ``α(t) = alpha_max · t^alpha_power``,
``noise_seed`` written into each file.
"""

from ml_collections import config_dict

from nlc_jax.configs.common import add_training_fields, preset_entries

PRESETS = {
    # name: (hyper channels, width, multipliers, blocks, crop, batch, steps, warmup, lr)
    "tiny": (8, 16, (1,), 1, 64, 2, 200, 10, 1e-3),
    "cpu": (64, 64, (1, 2), 1, 128, 8, 6000, 100, 5e-4),
    "paper": (192, 128, (1, 2, 4), 2, 256, 16, 500_000, 1000, 1e-4),
}


def get_config(preset: str = "cpu") -> config_dict.ConfigDict:
    """The config of a preset (``tiny``, ``cpu``, ``paper``)."""
    (entry,) = preset_entries("rvdiff", preset, PRESETS)
    hyper, width, mults, blocks, crop, batch, steps, warmup, lr = entry
    c = config_dict.ConfigDict()
    c.codec = "rvdiff"
    c.preset = preset
    c.autoencoder = "taef2"
    c.weights_dir = ""  # where named autoencoder weights live ("": $NLC_WEIGHTS_DIR / ../shared)
    c.model = config_dict.ConfigDict({"hyper_channels": hyper, "width": width,
                                      "multipliers": mults, "blocks": blocks, "knots": 8})
    c.lmbda_range = (400.0, 0.5)  # λ(0), λ(1)
    c.hyper_step_range = (1.0, 4.0)  # initial Δ_z(0), Δ_z(1)
    c.renoise_fraction = 0.5
    c.train_rate = -1.0  # < 0: a random t per example (one model, every rate); in [0, 1]: fixed
    c.pixel_weight = 0.0
    c.lpips_weight = 0.0
    c.compute_dtype = "float32"

    # coding (encode.py / evaluation)
    c.rate = 0.5
    c.steps = 2
    c.alpha_max = 0.5
    c.alpha_power = 1.0
    c.noise_seed = 0
    c.lmbda = 1.0  # only nlc-encode's label of the operating point (results.tsv); the rate is `rate`
    c.eval_rates = (0.0, 0.5, 1.0)

    return add_training_fields(c, crop=crop, batch_size=batch, num_steps=steps,
                               warmup_steps=warmup, learning_rate=lr, checkpoint_every=500,
                               eval_every=0, eval_images=4)
