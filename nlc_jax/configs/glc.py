"""GLC (Jia et al., CVPR 2024, "Generative Latent Coding for Ultra-Low Bitrate Image Compression"):
training and coding config, one file for the three stages.

``stage`` picks what ``nlc-train`` trains:

* ``autoencoder`` (stage I): the VQ autoencoder (``autoencoder.*``), loss L1/L2 + LPIPS (VGG)
  + PatchGAN hinge loss with VQGAN's adaptive weight from ``loss.disc_start``;
* ``transform`` (stage II): transform coding in the frozen autoencoder's latent
  (``latent.*``; needs ``autoencoder_checkpoint``), loss ``bpp + λ·(latent MSE + CE of the code
  prediction [+ pixel terms])`` with one λ per rate vector (``lmbdas``);
* ``joint`` (stage III, optional): starts from a stage-II export (``init_checkpoint``) and also
  trains the VQ decoder, with the pixel, LPIPS and GAN terms.

Presets (``--config glc:<preset>``): ``tiny`` (tests, seconds), ``cpu`` (1,500 steps per
stage, about 1.5 h in all on an idle 2-core CPU, step times in ``docs/glc.md``), ``paper``
(VQGAN nf 128, [1, 1, 2, 2, 4], K=16384, D=256; 256-channel transforms; for accelerators).
"""

from ml_collections import config_dict

from nlc_jax.configs.common import add_training_fields, preset_entries

# VQ autoencoder: channels, multipliers, res blocks, attention factors, z channels, GroupNorm
# groups, codebook size K, dimension D
AUTOENCODER = {
    "tiny": (8, (1, 1, 2, 2, 4), 1, (16,), 16, 4, 64, 16),
    "cpu": (32, (1, 1, 2, 2, 4), 1, (16,), 64, 8, 1024, 64),
    "paper": (128, (1, 1, 2, 2, 4), 2, (16,), 256, 32, 16384, 256),
}
# transform coding: width N, gated blocks per half-transform, hyper codebook Kz, its dimension Dz
LATENT = {
    "tiny": (16, 1, 32, 8),
    "cpu": (64, 1, 256, 32),
    "paper": (256, 2, 16384, 256),
}
# code prediction (width, heads, layers), discriminator (channels, layers)
AUX_NETS = {
    "tiny": ((32, 2, 1), (8, 2)),
    "cpu": ((128, 4, 2), (32, 3)),
    "paper": ((512, 8, 9), (64, 3)),
}
# λ of the four rate vectors: `cpu` calibrated on its trained autoencoder for 0.015–0.06 bpp on
# Kodak (λ = 1…8 gave 0.08–0.23 bpp; bpp grew about as sqrt(λ)); `paper` not calibrated
LMBDAS = {
    "tiny": (1.0, 2.0, 4.0, 8.0),
    "cpu": (0.03, 0.08, 0.2, 0.5),
    "paper": (1.0, 2.0, 4.0, 8.0),
}
# crop, batch, steps, warm-up, learning rate, discriminator start, eval images
TRAINING = {
    "tiny": (64, 2, 20, 2, 1e-3, 10, 1),
    "cpu": (128, 4, 1500, 50, 2e-4, 1000, 4),
    "paper": (256, 8, 500_000, 1000, 1e-4, 50_000, 24),
}


def get_config(preset: str = "paper") -> config_dict.ConfigDict:
    """The config of a preset (``tiny``, ``cpu``, ``paper``)."""
    ae, lat, aux, lmbdas, train = preset_entries("glc", preset, AUTOENCODER, LATENT, AUX_NETS,
                                                 LMBDAS, TRAINING)
    ch, mult, res, attn, zc, groups, k, d = ae
    n, blocks, kz, dz = lat
    (cp_width, cp_heads, cp_layers), (disc_ch, disc_layers) = aux
    crop, batch, steps, warmup, lr, disc_start, eval_images = train
    c = config_dict.ConfigDict()
    c.codec = "glc"
    c.preset = preset
    c.stage = "autoencoder"  # "autoencoder" | "transform" | "joint"
    c.autoencoder_checkpoint = ""  # stage transform: the stage-I workdir or its export/
    c.init_checkpoint = ""  # stage joint: the stage-II workdir or its export/

    c.autoencoder = config_dict.ConfigDict({
        "channels": ch, "channel_mult": mult, "num_res_blocks": res, "attention_factors": attn,
        "z_channels": zc, "norm_groups": groups, "codebook_size": k, "codebook_dim": d,
        "beta": 0.25, "l2_normalize": False, "ema": False, "ema_decay": 0.99,
        "usage_decay": 0.99, "restart_threshold": 0.03})
    c.latent = config_dict.ConfigDict({
        "n": n, "blocks": blocks, "hyper_codebook_size": kz, "hyper_dim": dz,
        # the hyper module: "categorical" (GLC's VQ indices, Kz × Dz codebook) or "factorized"
        # (ablation: round(z), Dz channels, under a learned factorized prior, as the hyperprior's)
        "hyper_module": "categorical",
        # categorical only: "fixed" (log2 Kz bits per position) or "entropy"
        "hyper_coding": "fixed",
        "hyper_restart_threshold": 0.03,
        # usage EMA of the hyper codes: the hyper VQ sees only batch·(crop/64)² vectors a step
        # (16 on `cpu`), and with 0.99 every unused code of the U(±1/K) initial codebook was
        # restarted at once after ~350 steps, which made a `cpu` run diverge; 0.9 restarts
        # them after ~35 steps, before the rest of the model depends on them
        "hyper_usage_decay": 0.9,
        # categorical prior of the hyper indices: an EMA of the batches' index histograms
        "hyper_prior_decay": 0.99})
    c.code_prediction = config_dict.ConfigDict({
        "enabled": True, "width": cp_width, "heads": cp_heads, "layers": cp_layers,
        "ce_weight": 1.0, "latent_mse_weight": 1.0})
    c.loss = config_dict.ConfigDict({
        "pixel": "l1",  # "l1" or "l2"
        "pixel_weight": 1.0, "lpips_weight": 1.0, "lpips_net": "vgg",
        "disc_weight": 0.8, "disc_start": disc_start, "disc_channels": disc_ch,
        "disc_layers": disc_layers,
        "transform_pixel_weight": 0.0,  # stage transform: pixel + LPIPS through the frozen decoder
    })
    c.lmbdas = lmbdas  # one per rate vector; weighs the distortion vs bpp
    c.rate_index = 0
    c.lmbda = 1.0  # only nlc-encode's label of the operating point (results.tsv); the rate is rate_index
    c.hyper_coding = ""  # encode: "" (the model's), "fixed"/"entropy" (categorical), "factorized"
    c.compute_dtype = "float32"

    # c.checkpoint (encode/decode): a stage-II/III workdir or its export/
    return add_training_fields(c, crop=crop, batch_size=batch, num_steps=steps,
                               warmup_steps=warmup, learning_rate=lr, checkpoint_every=500,
                               eval_every=0, eval_images=eval_images)
