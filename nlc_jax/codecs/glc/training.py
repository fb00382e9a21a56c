"""Training tasks of GLC's three stages for the generic loop in :mod:`nlc_jax.train`.

* :class:`AutoencoderTask` (``stage="autoencoder"``): the VQ autoencoder; per image
  ``pixel(x̂, x) + w_lpips·LPIPS(x̂, x) + vq_loss``, plus from ``loss.disc_start`` the generator's
  hinge loss weighted by VQGAN's adaptive weight times ``disc_weight``, and the discriminator's
  hinge loss (one optimizer, see :mod:`nlc_jax.codecs.glc.adversarial`).
* :class:`TransformTask` (``stage="transform"`` / ``"joint"``): GLC's transform coding in the
  latent of a trained, frozen autoencoder; each example draws a rate index ``r`` and pays
  ``bpp + λ_r · (w_mse·MSE(ŷ_vq, y_vq) + w_ce·CE(code prediction))`` (+ pixel/LPIPS terms through
  the VQ decoder when ``loss.transform_pixel_weight > 0``). ``joint`` also trains the VQ decoder
  with the pixel, LPIPS and GAN terms of stage I; the VQ encoder and its codebook stay frozen
  (they define the code-prediction targets).

Frozen parameters stay in the params pytree behind ``stop_gradient`` (zero gradients, so Adam
never moves them); the stage-II export holds the autoencoder and the latent codec, not the
training-only code predictor and discriminator.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.autoencoders import VQAutoencoder, VQConfig, VQSettings
from nlc_jax.autoencoders.api import pad_to_multiple
from nlc_jax.autoencoders.vector_quantizer import update_state as vq_update_state
from nlc_jax.autoencoders.vector_quantizer import usage_metrics
from nlc_jax.codecs.glc.adversarial import (
    PatchDiscriminator,
    adaptive_weight,
    generator_loss,
    hinge_d_loss,
)
from nlc_jax.codecs.glc.code_prediction import CodePredictor, code_cross_entropy
from nlc_jax.codecs.glc.latent_codec import HYPER_FACTOR, HYPER_MODULES, LatentCodec
from nlc_jax.entropy.distributions import categorical_bits
from nlc_jax.metrics.psnr import psnr

STAGES = ("autoencoder", "transform", "joint")
HYPER_CODINGS = ("fixed", "entropy")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
DECODER_KEYS = ("post_quant_conv", "decoder", "conv_out")  # VQ parameters trained in "joint"
# the metrics key the training loop pops and hands to ``update_state``
# (``nlc_jax.train.task.STATE_STATS``; codecs sit below ``nlc_jax.train``, so it is spelled here)
STATE_STATS = "state_stats"


class GLCConfigError(ValueError):
    """A GLC config value that cannot work (one-line message)."""


def vq_config(config: Any) -> VQConfig:
    """The :class:`VQConfig` of ``config.autoencoder``."""
    a = config.autoencoder
    try:
        return VQConfig(
            channels=int(a.channels), channel_mult=tuple(int(m) for m in a.channel_mult),
            num_res_blocks=int(a.num_res_blocks),
            attention_factors=tuple(int(f) for f in a.attention_factors),
            z_channels=int(a.z_channels), norm_groups=int(a.norm_groups),
            quantizer=VQSettings(codebook_size=int(a.codebook_size), dim=int(a.codebook_dim),
                                 beta=float(a.beta), l2_normalize=bool(a.l2_normalize),
                                 ema=bool(a.ema), ema_decay=float(a.ema_decay),
                                 usage_decay=float(a.usage_decay),
                                 restart_threshold=float(a.restart_threshold)))
    except (ValueError, TypeError) as e:
        raise GLCConfigError(f"autoencoder: {e}") from None


def latent_settings(config: Any) -> dict[str, Any]:
    """JSON-able sizes of the latent codec (``model.json``'s ``latent``)."""
    lat = config.latent
    return {"n": int(lat.n), "blocks": int(lat.blocks),
            "hyper_codebook_size": int(lat.hyper_codebook_size), "hyper_dim": int(lat.hyper_dim),
            "hyper_restart_threshold": float(lat.hyper_restart_threshold),
            "hyper_usage_decay": float(lat.hyper_usage_decay),
            "hyper_module": str(lat.hyper_module)}


def build_latent_codec(settings: dict[str, Any], dim: int, lmbdas: Sequence[float],
                       dtype: Any = jnp.float32) -> LatentCodec:
    """The :class:`LatentCodec` of ``settings`` (see :func:`latent_settings`) for a ``dim``-channel
    VQ latent; rate ``r`` starts with ``q_enc = sqrt(λ_r / geomean(λ))``."""
    hyper = VQSettings(codebook_size=int(settings["hyper_codebook_size"]),
                       dim=int(settings["hyper_dim"]),
                       restart_threshold=float(settings.get("hyper_restart_threshold", 0.0)),
                       usage_decay=float(settings.get("hyper_usage_decay", 0.99)))
    lm = np.asarray(lmbdas, np.float64)
    gains = tuple(float(g) for g in np.sqrt(lm / np.exp(np.mean(np.log(lm)))))
    return LatentCodec(dim=dim, n=int(settings["n"]), blocks=int(settings["blocks"]), hyper=hyper,
                       num_rates=len(lm), gain_init=gains, dtype=dtype,
                       hyper_module=str(settings.get("hyper_module", "categorical")))


def check_config(config: Any) -> None:
    """Raise :class:`GLCConfigError` for GLC values that cannot work."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise GLCConfigError(msg)

    need(config.stage in STAGES, f"stage must be one of {STAGES}, got {config.stage!r}")
    need(config.compute_dtype in DTYPES, f"compute_dtype must be one of {sorted(DTYPES)}")
    need(config.loss.pixel in ("l1", "l2"), f"loss.pixel must be 'l1' or 'l2', got "
         f"{config.loss.pixel!r}")
    need(config.latent.hyper_module in HYPER_MODULES,
         f"latent.hyper_module must be one of {HYPER_MODULES}, got "
         f"{config.latent.hyper_module!r}")
    need(config.latent.hyper_coding in HYPER_CODINGS,
         f"latent.hyper_coding must be one of {HYPER_CODINGS} (it only applies to the "
         "categorical hyper module; for a factorized hyperprior set "
         f"latent.hyper_module='factorized'), got {config.latent.hyper_coding!r}")
    lm = tuple(config.lmbdas)
    need(len(lm) >= 1 and all(float(v) > 0 for v in lm), f"lmbdas must be positive, got {lm}")
    need(int(config.crop) % (16 * HYPER_FACTOR) == 0,
         f"crop={config.crop} must be a multiple of {16 * HYPER_FACTOR}")
    need(int(config.latent.n) % 4 == 0, f"latent.n={config.latent.n} must be divisible by 4")
    if config.stage == "transform":
        need(bool(config.autoencoder_checkpoint),
             "stage 'transform' needs the stage-I autoencoder: pass "
             "--config.autoencoder_checkpoint=<its training workdir or export/ directory>")
    if config.stage == "joint":
        need(bool(config.init_checkpoint),
             "stage 'joint' starts from stage II: pass --config.init_checkpoint=<its training "
             "workdir or export/ directory>")


def _stop(tree: Any) -> Any:
    return jax.tree.map(jax.lax.stop_gradient, tree)


class _Reconstruction:
    """Pixel (L1/L2) + LPIPS distortion per image, and the GAN terms, shared by the stages."""

    def __init__(self, config: Any, dtype: Any):
        from nlc_jax.metrics.lpips import cached_lpips_params

        loss = config.loss
        self.pixel, self.pixel_weight = loss.pixel, float(loss.pixel_weight)
        self.lpips_weight = float(loss.lpips_weight)
        self.lpips_params = cached_lpips_params(loss.lpips_net) if self.lpips_weight > 0 else None
        self.disc = PatchDiscriminator(int(loss.disc_channels), int(loss.disc_layers), dtype)
        self.disc_weight, self.disc_start = float(loss.disc_weight), int(loss.disc_start)

    def distortion(self, x_hat: jax.Array, x: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``[B]`` per-image ``w_pix·pixel + w_lpips·LPIPS`` and its parts (batch means)."""
        from nlc_jax.metrics.lpips import lpips

        diff = x_hat - x
        rec = jnp.mean(jnp.abs(diff) if self.pixel == "l1" else jnp.square(diff), axis=(1, 2, 3))
        total = self.pixel_weight * rec
        parts = {"rec": jnp.mean(rec)}
        if self.lpips_params is not None:
            p = lpips(x_hat, x, self.lpips_params, max_value=1.0)
            total = total + self.lpips_weight * p
            parts["lpips"] = jnp.mean(p)
        return total, parts

    def adversarial(self, disc_params: Any, render, head: Any, features: jax.Array,
                    x_hat: jax.Array, x: jax.Array, step: jax.Array
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Generator + discriminator hinge terms (0 before ``disc_start``).

        ``render(head, features)`` is the decoder's last layer; VQGAN's adaptive weight is taken
        over ``head``'s parameters."""
        active = (step >= self.disc_start).astype(jnp.float32)
        frozen_disc = _stop(disc_params)
        g_loss = generator_loss(self.disc.apply(frozen_disc, x_hat))
        fixed = jax.lax.stop_gradient(features)

        def weight() -> jax.Array:
            return adaptive_weight(
                lambda w: jnp.mean(self.distortion(render(w, fixed), x)[0]),
                lambda w: generator_loss(self.disc.apply(frozen_disc, render(w, fixed))), head)

        d_weight = jax.lax.cond(step >= self.disc_start, weight, lambda: jnp.float32(0.0))
        d_loss = hinge_d_loss(self.disc.apply(disc_params, x),
                              self.disc.apply(disc_params, jax.lax.stop_gradient(x_hat)))
        total = self.disc_weight * d_weight * active * g_loss + active * d_loss
        return total, {"g_loss": g_loss, "d_loss": d_loss, "d_weight": d_weight}


def _with_head(vq_params: Any, head: Any) -> Any:
    return {"params": {**vq_params["params"], "conv_out": head}}


class AutoencoderTask:
    """Stage I: the VQ autoencoder (see module docstring)."""

    loss_takes_step = True

    def __init__(self, config: Any):
        check_config(config)
        self.config = config
        self.vq = vq_config(config)
        self.dtype = DTYPES[config.compute_dtype]
        self.model = VQAutoencoder(self.vq, self.dtype)
        self.recon = _Reconstruction(config, self.dtype)

    def init(self, rng: jax.Array, crop: int) -> dict[str, Any]:
        k_vq, k_d = jax.random.split(rng)
        x = jnp.zeros((1, crop, crop, 3), jnp.float32)
        return {"vq": self.model.init(k_vq, x), "disc": self.recon.disc.init(k_d, x)}

    def loss(self, params: dict[str, Any], images: jax.Array, rng: jax.Array,
             step: jax.Array | int = 0) -> tuple[jax.Array, dict[str, Any]]:
        """``images [B, H, W, 3]`` in [0, 1] → (loss, metrics incl. ``state_stats``)."""
        apply, vq = self.model.apply, params["vq"]
        y = apply(vq, images, method="latent")
        q, _, aux = apply(vq, y, rng, method="quantize")
        features = apply(vq, q, method="features")

        def render(head: Any, f: jax.Array) -> jax.Array:
            return apply(_with_head(vq, head), f, method="head")

        head = vq["params"]["conv_out"]
        x_hat = render(head, features)
        dist, parts = self.recon.distortion(x_hat, images)
        adv, adv_parts = self.recon.adversarial(params["disc"], render, head, features, x_hat,
                                                images, jnp.asarray(step))
        loss = jnp.mean(dist) + aux["vq_loss"] + adv
        mse = jnp.mean(jnp.square(jnp.clip(x_hat, 0.0, 1.0) - images))
        stats = aux["stats"]
        usage = usage_metrics(stats["counts"], vq["params"]["quantizer"]["usage"],
                              self.vq.quantizer)
        return loss, {**parts, **adv_parts, "vq_loss": aux["vq_loss"],
                      "psnr": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10)),
                      **{f"vq_{k}": v for k, v in usage.items()}, STATE_STATS: stats}

    def update_state(self, params: dict[str, Any], stats: Any, rng: jax.Array) -> dict[str, Any]:
        inner = dict(params["vq"]["params"])
        inner["quantizer"] = vq_update_state(inner["quantizer"], stats, self.vq.quantizer, rng)
        return {**params, "vq": {"params": inner}}

    def model_config(self) -> dict[str, Any]:
        return {"codec": "glc", "stage": "autoencoder", "autoencoder": "vq",
                "vq": self.vq.to_dict()}

    def export(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"autoencoder": jax.device_get(params["vq"])}

    def evaluate(self, params: dict[str, Any], images: Sequence[np.ndarray]) -> dict[str, float]:
        """Reconstruction through the quantizer: PSNR, and the bpp of sending the VQ indices
        (``log2 K`` bits each)."""
        psnrs, bpps = [], []
        for im in images:
            x = jnp.asarray(pad_to_multiple(im[None], self.vq.factor), jnp.float32) / 255.0
            out = _reconstruct(self.model, params["vq"], x)
            recon = np.asarray(out[0, :im.shape[0], :im.shape[1]])
            psnrs.append(float(psnr(recon, im)))
            positions = x.shape[1] * x.shape[2] / self.vq.factor**2
            bpps.append(positions * math.log2(self.vq.quantizer.codebook_size)
                        / (im.shape[0] * im.shape[1]))
        return {"psnr": float(np.mean(psnrs)), "bpp_vq": float(np.mean(bpps))}


@functools.partial(jax.jit, static_argnums=0)
def _reconstruct(model: VQAutoencoder, params: Any, x: jax.Array) -> jax.Array:
    q, _, _ = model.apply(params, model.apply(params, x, method="latent"), method="quantize")
    out = model.apply(params, q, method="decode")
    return jnp.round(jnp.clip(out, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def _load_export(path: str, stage: str) -> tuple[Any, dict[str, Any]]:
    from nlc_jax.codecs.weights import CheckpointError, load_inference

    params, model_config, _ = load_inference(path)
    if model_config.get("codec") != "glc":
        raise CheckpointError(f"{path}: holds a {model_config.get('codec')!r} model, not GLC")
    if stage == "transform" and "vq" not in model_config:
        raise CheckpointError(f"{path}: holds no VQ autoencoder")
    if stage == "joint" and "latent" not in model_config:
        raise CheckpointError(f"{path}: holds no stage-II (transform) model")
    return jax.tree.map(jnp.asarray, params), model_config


class TransformTask:
    """Stages II and III: transform coding in the autoencoder's latent (see module docstring)."""

    loss_takes_step = True

    def __init__(self, config: Any):
        check_config(config)
        self.config, self.stage = config, config.stage
        source = config.autoencoder_checkpoint if self.stage == "transform" else \
            config.init_checkpoint
        self.loaded, loaded_config = _load_export(source, self.stage)
        self.vq = VQConfig.from_dict(loaded_config["vq"])
        self.dtype = DTYPES[config.compute_dtype]
        self.model = VQAutoencoder(self.vq, self.dtype)
        if self.stage == "joint":  # the architecture comes with the stage-II model
            self.latent_settings = dict(loaded_config["latent"])
            self.lmbdas = tuple(float(v) for v in loaded_config["lmbdas"])
        else:
            self.latent_settings = latent_settings(config)
            self.lmbdas = tuple(float(v) for v in config.lmbdas)
        self.latent = build_latent_codec(self.latent_settings, self.vq.embed_dim, self.lmbdas,
                                         self.dtype)
        # what the training rate counts of the hyper-latent (the model's default file mode)
        self.hyper_coding = "factorized" if self.latent.factorized else \
            config.latent.hyper_coding
        self.prior_decay = float(config.latent.hyper_prior_decay)
        self.code = config.code_prediction
        tokens = (int(config.crop) // self.vq.factor) ** 2
        self.predictor = CodePredictor(self.vq.quantizer.codebook_size, tokens,
                                       int(self.code.width), int(self.code.heads),
                                       int(self.code.layers), self.dtype)
        self.recon = _Reconstruction(config, self.dtype)
        self.pixel_weight = 1.0 if self.stage == "joint" else float(
            config.loss.transform_pixel_weight)

    def init(self, rng: jax.Array, crop: int) -> dict[str, Any]:
        keys = jax.random.split(rng, 3)
        x = jnp.zeros((1, crop, crop, 3), jnp.float32)
        y = jnp.zeros((1, crop // self.vq.factor, crop // self.vq.factor, self.vq.embed_dim))
        params = {"vq": self.loaded["autoencoder"]}
        params["latent"] = self.loaded["latent"] if self.stage == "joint" else self.latent.init(
            keys[0], y, jnp.zeros((1,), jnp.int32))
        if self.code.enabled:
            params["code"] = self.predictor.init(keys[1], y)
        if self.stage == "joint":
            params["disc"] = self.recon.disc.init(keys[2], x)
        return params

    def _vq_params(self, vq: Any) -> Any:
        """The autoencoder behind ``stop_gradient``, except the decoder in stage ``joint``."""
        if self.stage != "joint":
            return _stop(vq)
        return {"params": {k: (v if k in DECODER_KEYS else _stop(v))
                           for k, v in vq["params"].items()}}

    def hyper_bits(self, latent_params: Any, idx: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Categorical module: (bits per image ``[B]`` of the hyper indices ``idx [B, h, w]``
        under the model's coding, their bits ``[B]`` under the categorical prior). The prior
        gets no gradient: :meth:`update_state` moves it towards each batch's index histogram."""
        logits = jax.lax.stop_gradient(
            self.latent.apply(latent_params, method="hyper_prior_logits"))
        prior = jnp.sum(categorical_bits(jnp.broadcast_to(logits, (*idx.shape, logits.shape[0])),
                                         idx), axis=(1, 2))
        if self.hyper_coding == "entropy":
            return prior, prior
        fixed = idx.shape[1] * idx.shape[2] * math.log2(self.latent.hyper.codebook_size)
        return jnp.full((idx.shape[0],), fixed, jnp.float32), prior

    def loss(self, params: dict[str, Any], images: jax.Array, rng: jax.Array,
             step: jax.Array | int = 0) -> tuple[jax.Array, dict[str, Any]]:
        """``images [B, H, W, 3]`` in [0, 1] → (loss, metrics; ``state_stats`` with the
        categorical hyper module only)."""
        b, h, w, _ = images.shape
        k_rate, k_z, k_y = jax.random.split(rng, 3)
        vq = self._vq_params(params["vq"])
        y_vq = self.model.apply(vq, images, method="latent")
        targets = self.model.apply(vq, y_vq, method="indices").reshape(b, -1)
        rate = jax.random.randint(k_rate, (b,), 0, len(self.lmbdas))
        lmbda = jnp.asarray(self.lmbdas, jnp.float32)[rate]
        lat, apply = params["latent"], self.latent.apply
        y = apply(lat, y_vq, rate, method="analyse")
        z = apply(lat, y, method="hyper_analyse")
        if self.latent.factorized:
            z_hat, z_bits = apply(lat, z, k_z, method="quantize_hyper_factorized")
        else:
            z_hat, z_idx, z_aux = apply(lat, z, k_z, method="quantize_hyper")
            z_bits, prior_bits = self.hyper_bits(lat, z_idx)
        common, reduced = apply(lat, z_hat, method="hyper_synthesise")
        y_hat, y_bits = apply(lat, y, common, reduced, k_y, method="prior")
        y_dec = apply(lat, y_hat, rate, method="synthesise")
        bpp_y, bpp_z = y_bits / (h * w), z_bits / (h * w)
        latent_mse = jnp.mean(jnp.square(y_dec - y_vq), axis=(1, 2, 3))
        dist = float(self.code.latent_mse_weight) * latent_mse
        metrics = {"latent_mse": jnp.mean(latent_mse)}
        if self.code.enabled:
            ce = code_cross_entropy(self.predictor.apply(params["code"], y_dec), targets)
            dist = dist + float(self.code.ce_weight) * ce
            metrics["code_ce"] = jnp.mean(ce)
        extra = 0.0
        if self.pixel_weight > 0:
            features = self.model.apply(vq, y_dec, method="features")

            def render(head: Any, f: jax.Array) -> jax.Array:
                return self.model.apply(_with_head(vq, head), f, method="head")

            head = vq["params"]["conv_out"]
            x_hat = render(head, features)
            pix, parts = self.recon.distortion(x_hat, images)
            dist = dist + self.pixel_weight * pix
            metrics.update(parts)
            mse = jnp.mean(jnp.square(jnp.clip(x_hat, 0.0, 1.0) - images))
            metrics["psnr"] = -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))
            if self.stage == "joint":
                extra, adv = self.recon.adversarial(params["disc"], render, head, features, x_hat,
                                                    images, jnp.asarray(step))
                metrics.update(adv)
        metrics.update({"bpp": jnp.mean(bpp_y + bpp_z), "bpp_y": jnp.mean(bpp_y),
                        "bpp_z": jnp.mean(bpp_z)})
        if self.latent.factorized:  # no VQ: no auxiliary losses, usage or state statistics
            return jnp.mean(bpp_y + bpp_z + lmbda * dist) + extra, metrics
        loss = jnp.mean(bpp_y + bpp_z + lmbda * dist) + z_aux["vq_loss"] + extra
        usage = usage_metrics(z_aux["stats"]["counts"], lat["params"]["hyper_vq"]["usage"],
                              self.latent.hyper)
        metrics.update({"bpp_z_entropy": jnp.mean(prior_bits) / (h * w),
                        "hyper_vq_loss": z_aux["vq_loss"],
                        **{f"hyper_{k}": v for k, v in usage.items()},
                        STATE_STATS: z_aux["stats"]})
        return loss, metrics

    def update_state(self, params: dict[str, Any], stats: Any, rng: jax.Array) -> dict[str, Any]:
        """Categorical module: the hyper codebook's restarts, and the categorical prior moved
        towards the batch's index histogram (``p ← d·p + (1 − d)·counts/Σcounts``, ``d`` =
        ``latent.hyper_prior_decay``: an exponential moving maximum-likelihood estimate; a
        gradient step of Adam moves a logit by at most the learning rate, ≤ 0.3 in a 1,500-step
        `cpu` run, which left the learned prior uniform). The factorized module has none: its
        loss emits no ``state_stats``, and ``params`` come back unchanged."""
        if self.latent.factorized:
            return params
        inner = dict(params["latent"]["params"])
        inner["hyper_vq"] = vq_update_state(inner["hyper_vq"], stats, self.latent.hyper, rng)
        counts = stats["counts"]
        hist = counts / jnp.maximum(jnp.sum(counts), 1.0)
        probs = (self.prior_decay * jax.nn.softmax(inner["hyper_logits"])
                 + (1.0 - self.prior_decay) * hist)
        inner["hyper_logits"] = jnp.log(jnp.maximum(probs, 1e-12))
        return {**params, "latent": {"params": inner}}

    def model_config(self) -> dict[str, Any]:
        return {"codec": "glc", "stage": self.stage, "autoencoder": "vq", "vq": self.vq.to_dict(),
                "latent": self.latent_settings, "lmbdas": list(self.lmbdas),
                "hyper_coding": self.hyper_coding}

    def export(self, params: dict[str, Any]) -> dict[str, Any]:
        """Inference params: the autoencoder, the latent codec and the hyper prior frozen into
        integer tables: ``hyper_counts [Kz]`` (categorical) or ``z_tables`` (factorized:
        ``{"counts" [Dz, K], "offsets" [Dz]}``, as the pixel hyperprior's export)."""
        from nlc_jax.codecs.glc.hyper_coding import factorized_tables, prior_counts

        params = jax.device_get(params)
        inner = params["latent"]["params"]
        out = {"autoencoder": params["vq"], "latent": params["latent"]}
        if self.latent.factorized:
            tables = factorized_tables(inner["hyper_prior"], self.latent.hyper.dim)
            return {**out, "z_tables": tables.as_dict()}
        return {**out, "hyper_counts": prior_counts(np.asarray(inner["hyper_logits"]))}

    def evaluate(self, params: dict[str, Any], images: Sequence[np.ndarray]) -> dict[str, float]:
        """Real coding of each image at every rate; mean bpp/PSNR per rate (``_<r>`` keys)."""
        from nlc_jax.codecs.glc.codec import GLCCodec

        inference = self.export(params)
        out: dict[str, float] = {}
        for r in range(len(self.lmbdas)):
            codec = GLCCodec.from_params(inference, self.model_config(), rate_index=r)
            infos = [codec.encode(im).info for im in images]
            for key in ("bpp", "psnr", "encode_seconds"):
                out[f"{key}_{r}"] = float(np.mean([i[key] for i in infos]))
        return out


def make_task(config: Any) -> AutoencoderTask | TransformTask:
    """The task of ``config.stage`` (``nlc_jax.codecs.registry.task_factory("glc")``)."""
    if config.stage not in STAGES:
        raise GLCConfigError(f"stage must be one of {STAGES}, got {config.stage!r}")
    return AutoencoderTask(config) if config.stage == "autoencoder" else TransformTask(config)


def export_untrained(config: Any, autoencoder_dir: str | Path, transform_dir: str | Path,
                     seed: int = 0) -> None:
    """Stage-I and stage-II exports of randomly initialised models of ``config`` (any stage:
    the autoencoder's and the transform's sizes are taken) into ``autoencoder_dir`` and
    ``transform_dir``; untrained weights code just as exactly (tests, the fuzzing corpus). The
    discriminator and the code predictor, which no export holds, are not initialised.

    Raises:
      GLCConfigError: bad config values.
    """
    from nlc_jax.codecs.weights import export_inference

    stage_one = config.copy_and_resolve_references()
    stage_one.stage = "autoencoder"
    ae = AutoencoderTask(stage_one)
    crop = int(config.crop)
    vq = jax.jit(ae.model.init)(jax.random.key(seed), jnp.zeros((1, crop, crop, 3)))
    export_inference(autoencoder_dir, ae.export({"vq": vq}), ae.model_config())
    stage_two = config.copy_and_resolve_references()
    stage_two.update(stage="transform", autoencoder_checkpoint=str(autoencoder_dir))
    tc = TransformTask(stage_two)
    y = jnp.zeros((1, crop // tc.vq.factor, crop // tc.vq.factor, tc.vq.embed_dim))
    latent = jax.jit(tc.latent.init)(jax.random.key(seed + 1), y, jnp.zeros((1,), jnp.int32))
    export_inference(transform_dir, tc.export({"vq": vq, "latent": latent}), tc.model_config())
