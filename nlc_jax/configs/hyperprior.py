"""Mean-scale hyperprior (Minnen et al. 2018, "mbt2018-mean"): training and coding config.

Presets (``--config hyperprior:<preset>``):

* ``tiny``: N=16, M=24, 64×64 crops, a few hundred steps: CPU tests and smoke runs (minutes).
* ``cpu``: N=64, M=96, 128×128 crops, batch 8, 2000 steps at lr 1e-3: budget-limited CPU runs
  (the RD runs of ``docs/train.md``: ≈ 0.5 s/step on one CPU core, ≈ 17 min per model).
* ``paper``: N=128, M=192 (CompressAI quality 1–4), 256×256 crops, batch 16.
* ``paper_hq``: N=192, M=320 (CompressAI quality 5–8).

``lmbda`` weighs distortion as in CompressAI: ``loss = lmbda · 255² · MSE + bpp``; CompressAI's
mbt2018-mean uses 0.0018, 0.0035, 0.0067, 0.0130 (N=128) and 0.0250, 0.0483, 0.0932, 0.1800
(N=192). A non-empty ``lmbdas`` trains one variable-rate model with a learned gain vector per λ
(``lmbda`` is then ignored); ``rate_index`` picks the λ when coding.
"""

from ml_collections import config_dict

from nlc_jax.configs.common import add_training_fields, preset_entries

PRESETS = {
    # name: (N, M, crop, batch, steps, warmup, eval_images, learning rate)
    "tiny": (16, 24, 64, 4, 300, 20, 2, 1e-3),
    "cpu": (64, 96, 128, 8, 2000, 50, 24, 1e-3),
    "paper": (128, 192, 256, 16, 1_000_000, 1000, 24, 1e-4),
    "paper_hq": (192, 320, 256, 16, 1_000_000, 1000, 24, 1e-4),
}


def get_config(preset: str = "paper") -> config_dict.ConfigDict:
    """The config of a preset (``tiny``, ``cpu``, ``paper``, ``paper_hq``)."""
    (entry,) = preset_entries("hyperprior", preset, PRESETS)
    n, m, crop, batch, steps, warmup, eval_images, lr = entry
    c = config_dict.ConfigDict()
    c.codec = "hyperprior"
    c.preset = preset
    c.model = config_dict.ConfigDict({"n": n, "m": m})
    c.lmbda = 0.0130
    c.lmbdas = ()
    c.rate_index = 0
    c.compute_dtype = "float32"  # or "bfloat16" (parameters stay float32)

    return add_training_fields(c, crop=crop, batch_size=batch, num_steps=steps,
                               warmup_steps=warmup, learning_rate=lr, eval_images=eval_images)
