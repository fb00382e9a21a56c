"""One interface for every autoencoder: ``load(name_or_path) -> (AutoencoderFns, params)``.

Conventions shared by all models (so a codec can take any of them):

* ``encode(params, x)``: ``x`` is ``[B, H, W, 3]`` float RGB **in [0, 1]**, ``H`` and ``W``
  multiples of ``fns.factor`` (see :func:`pad_to_multiple`); returns the latent ``[B, H/f, W/f, fns.latent_channels]`` float32.
  SD-VAE: the posterior *mean*, normalised for a diffusion model,
  ``(mean - shift_factor) * scaling_factor``. TAE: the TAE's latent as trained (no scaling).
* ``decode(params, z)``: the inverse map, ``[B, h, w, C]`` → ``[B, f·h, f·w, 3]`` RGB ≈ [0, 1],
  float32, **not clamped** (clip before quantising to 8 bits).
* Both are pure and jit-compiled; ``dtype=jnp.bfloat16`` computes in bfloat16 (parameters stay
  float32 in ``params``; inputs and outputs are float32).
* ``encode_tiled`` / ``decode_tiled`` process large images tile by tile with overlap blending.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nlc_jax.autoencoders import sd_vae_keys, tae
from nlc_jax.autoencoders.loaders import read_state_dict, to_flax
from nlc_jax.autoencoders.sd_vae import PRESETS, AutoencoderKL, VAEConfig, param_shapes
from nlc_jax.autoencoders.tiling import tiled_apply
from nlc_jax.autoencoders.vqgan import (
    VQAutoencoder,
    VQConfig,
    VQExportError,
    is_vq_export,
    load_vq_export,
)

Params = Any
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[3] / "shared" / "weights"
WEIGHTS_ENV = "NLC_WEIGHTS_DIR"
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"


class AutoencoderError(ValueError):
    """Bad autoencoder name/path or input shape (one-line message)."""


@dataclasses.dataclass(frozen=True)
class AutoencoderFns:
    """Pure functions of one autoencoder (see the module docstring for conventions).

    Attributes:
      name: model name (``"taef2"``, or the weight path's stem).
      latent_channels: channels of the latent.
      factor: spatial down-sampling factor (8).
      encode: ``(params, [B, H, W, 3] in [0, 1]) -> [B, H/f, W/f, C]``.
      decode: ``(params, [B, h, w, C]) -> [B, f·h, f·w, 3]`` ≈ [0, 1].
      encode_local, encode_global: ``encode = encode_global ∘ encode_local``; the first part
        is convolutional (tileable), the second works at latent resolution on the whole image
        (attention, GroupNorm statistics). Same for ``decode = decode_local ∘ decode_global``.
      config: the ``VAEConfig`` or ``TAEConfig`` of the model.
    """

    name: str
    latent_channels: int
    factor: int
    encode: Callable[[Params, jax.Array], jax.Array]
    decode: Callable[[Params, jax.Array], jax.Array]
    encode_local: Callable[[Params, jax.Array], jax.Array]
    encode_global: Callable[[Params, jax.Array], jax.Array]
    decode_global: Callable[[Params, jax.Array], jax.Array]
    decode_local: Callable[[Params, jax.Array], jax.Array]
    config: Any

    def encode_tiled(self, params: Params, x: np.ndarray, tile: int = 512,
                     overlap: int = 64) -> np.ndarray:
        """``encode`` for large images: ``[B, H, W, 3]`` → ``[B, H/f, W/f, C]`` (NumPy).

        The convolutional stage runs on ``tile × tile`` pixel tiles (``overlap`` pixels of
        overlap, blended), the latent-resolution stage on the whole feature map.
        """
        _check_shape(self.name, x, self.factor, 3, "image")
        f = self.factor
        h = tiled_apply(lambda t: self.encode_local(params, t), x, tile=max(f, tile // f * f),
                        overlap=overlap, up=1, down=f, align=f)
        return np.asarray(self.encode_global(params, h))

    def decode_tiled(self, params: Params, z: np.ndarray, tile: int = 64,
                     overlap: int = 8) -> np.ndarray:
        """``decode`` for large latents; ``tile``/``overlap`` in latent positions (NumPy out)."""
        _check_shape(self.name, z, 1, self.latent_channels, "latent")
        h = np.asarray(self.decode_global(params, z))
        return tiled_apply(lambda t: self.decode_local(params, t), h, tile=tile,
                           overlap=overlap, up=self.factor, down=1, align=1)


def pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Pad ``[B, H, W, C]`` at the bottom/right by edge replication to multiples of ``multiple``.

    Crop the decoded image back with ``y[:, :H, :W]``.
    """
    ph, pw = -x.shape[1] % multiple, -x.shape[2] % multiple
    return np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else x


def _check_shape(name: str, x: Any, multiple: int, channels: int, what: str) -> None:
    if x.ndim != 4 or x.shape[-1] != channels or x.shape[1] % multiple or x.shape[2] % multiple:
        raise AutoencoderError(
            f"{name}: {what} must be [B, H, W, {channels}] with H, W multiples of {multiple}, "
            f"got {tuple(x.shape)}")


def _checked(name: str, fn: Callable, multiple: int, channels: int, what: str) -> Callable:
    """``jax.jit(fn)`` behind a shape check that raises a one-line :class:`AutoencoderError`."""
    jitted = jax.jit(fn)

    def call(params: Params, x: jax.Array) -> jax.Array:
        _check_shape(name, x, multiple, channels, what)
        return jitted(params, x)

    call.__doc__ = fn.__doc__
    return call


def _fns(name: str, latent: int, factor: int, config: Any, enc_local: Callable,
         enc_global: Callable, dec_global: Callable, dec_local: Callable) -> AutoencoderFns:
    def encode(params: Params, x: jax.Array) -> jax.Array:
        return enc_global(params, enc_local(params, x))

    def decode(params: Params, z: jax.Array) -> jax.Array:
        return dec_local(params, dec_global(params, z))

    return AutoencoderFns(
        name, latent, factor, _checked(name, encode, factor, 3, "image"),
        _checked(name, decode, 1, latent, "latent"), jax.jit(enc_local), jax.jit(enc_global),
        jax.jit(dec_global), jax.jit(dec_local), config)


def make_sd_vae(config: VAEConfig, dtype: Any = jnp.float32, name: str = "sd_vae") -> AutoencoderFns:
    """``AutoencoderFns`` of an SD-VAE architecture (params from :func:`load` or ``init``)."""
    model = AutoencoderKL(config, dtype)

    def enc_local(params: Params, x: jax.Array) -> jax.Array:
        return model.apply({"params": params}, 2.0 * x - 1.0, method=AutoencoderKL.encode_local)

    def enc_global(params: Params, h: jax.Array) -> jax.Array:
        mean, _ = model.apply({"params": params}, h, "global", method=AutoencoderKL.moments)
        return (mean - config.shift_factor) * config.scaling_factor

    def dec_global(params: Params, z: jax.Array) -> jax.Array:
        raw = z / config.scaling_factor + config.shift_factor
        return model.apply({"params": params}, raw, "global", method=AutoencoderKL.decode)

    def dec_local(params: Params, h: jax.Array) -> jax.Array:
        y = model.apply({"params": params}, h, "local", method=AutoencoderKL.decode)
        return 0.5 * (y + 1.0)

    return _fns(name, config.latent_channels, config.factor, config, enc_local, enc_global,
                dec_global, dec_local)


def make_tae(config: tae.TAEConfig, dtype: Any = jnp.float32) -> AutoencoderFns:
    """``AutoencoderFns`` of a TAE; params are ``{"encoder": ..., "decoder": ...}``."""

    def part(module: type, side: str, which: str) -> Callable:
        net = module(config, dtype, which)
        return lambda params, x: net.apply({"params": params[side]}, x)

    return _fns(config.name, config.latent_channels, tae.FACTOR, config,
                part(tae.TAEEncoder, "encoder", "local"), part(tae.TAEEncoder, "encoder", "global"),
                part(tae.TAEDecoder, "decoder", "global"), part(tae.TAEDecoder, "decoder", "local"))


def make_vq(config: VQConfig, dtype: Any = jnp.float32, name: str = "vqgan") -> AutoencoderFns:
    """``AutoencoderFns`` of a VQ autoencoder (:mod:`nlc_jax.autoencoders.vqgan`): ``encode`` gives
    the continuous (pre-quantizer) latent ``[B, H/16, W/16, D]``, ``decode`` maps a latent
    (quantized or not) to pixels; params are ``{"params": ...}`` of ``VQAutoencoder``."""
    model = VQAutoencoder(config, dtype)

    def enc(params: Params, x: jax.Array) -> jax.Array:
        return model.apply(params, x, method="latent")

    def dec(params: Params, y: jax.Array) -> jax.Array:
        return model.apply(params, y, method="decode")

    def identity(_params: Params, x: jax.Array) -> jax.Array:
        return x

    return _fns(name, config.embed_dim, config.factor, config, enc, identity, identity, dec)


def _load_tae(config: tae.TAEConfig, folder: Path, dtype: Any) -> tuple[AutoencoderFns, Params]:
    shapes = tae.param_shapes(config)
    params = {}
    for part in ("encoder", "decoder"):
        path = folder / f"{config.name}_{part}.pth"
        params[part] = to_flax(read_state_dict(path), shapes[part], str(path))
    return make_tae(config, dtype), jax.tree.map(jnp.asarray, params)


def _sd_config(config: VAEConfig | str | None, what: str) -> VAEConfig | None:
    if isinstance(config, str):
        if config not in PRESETS:
            raise AutoencoderError(f"{what}: unknown preset '{config}' (known: {', '.join(PRESETS)})")
        return PRESETS[config]
    return config


def _load_sd(path: Path, config: VAEConfig | str | None,
             dtype: Any) -> tuple[AutoencoderFns, Params]:
    cfg = _sd_config(config, str(path))
    if path.is_dir():
        if cfg is None:
            try:
                cfg = VAEConfig.from_json(path / "config.json")
            except (OSError, ValueError, TypeError) as e:
                raise AutoencoderError(f"{path}: cannot read config.json ({e})") from None
        weights = path / DIFFUSERS_WEIGHTS
        state = sd_vae_keys.from_diffusers(read_state_dict(weights))
    else:
        weights = path
        state = read_state_dict(path)
        if sd_vae_keys.is_ldm(state):
            given = cfg
            try:
                cfg = sd_vae_keys.infer_ldm_config(sd_vae_keys.ldm_state(state),
                                                   given or PRESETS["sd"])
            except ValueError as e:
                raise AutoencoderError(f"{path}: {e}; pass config= a VAEConfig") from None
            if given is None and cfg.latent_channels != 4:
                raise AutoencoderError(
                    f"{path}: {cfg.latent_channels}-channel latents; pass config= a preset "
                    f"({', '.join(PRESETS)}) or a VAEConfig to set the latent scale/shift")
            state = sd_vae_keys.from_ldm(state)
        elif cfg is None:
            raise AutoencoderError(f"{path}: diffusers-named weights need config= (a preset or VAEConfig)")
        else:
            state = sd_vae_keys.from_diffusers(state)
    params = to_flax(state, param_shapes(cfg), str(weights))
    return make_sd_vae(cfg, dtype, path.stem), jax.tree.map(jnp.asarray, params)


def _tae_pair(path: Path) -> tuple[tae.TAEConfig, Path] | None:
    """A TAE weight pair named by a folder holding ``<variant>_encoder.pth`` or by one such file."""
    folder, stems = (path, [p.stem for p in path.glob("*_encoder.pth")]) if path.is_dir() else (
        path.parent, [path.stem])
    for stem in stems:
        variant = stem.rsplit("_", 1)[0]
        if stem.endswith(("_encoder", "_decoder")) and variant in tae.TAE_VARIANTS:
            return tae.TAE_VARIANTS[variant], folder
    return None


def load(name_or_path: str | os.PathLike, *, dtype: Any = jnp.float32,
         config: VAEConfig | str | None = None,
         weights_dir: str | os.PathLike | None = None) -> tuple[AutoencoderFns, Params]:
    """Load an autoencoder.

    Args:
      name_or_path: one of

        * a TAE name (``taesd``, ``taesdxl``, ``taesd3``, ``taef1``, ``taef2``): reads
          ``<name>_{encoder,decoder}.pth`` from ``weights_dir``, else ``$NLC_WEIGHTS_DIR``, else
          ``../shared/weights`` next to the repository;
        * a folder or file of a TAE pair (``.../taef2_encoder.pth``);
        * a VQ autoencoder trained with ``nlc-train --config glc:<preset>`` (stage
          ``autoencoder``): its workdir or ``export/`` folder;
        * a diffusers folder (``config.json`` + ``diffusion_pytorch_model.safetensors``, or
          such a ``vae/`` subfolder);
        * an LDM/CompVis ``.safetensors`` / ``.ckpt`` (full SD checkpoint with
          ``first_stage_model.`` keys, or VAE only). The architecture is always read from the
          tensor shapes; GroupNorm groups and latent scale/shift come from ``config`` (default:
          preset ``sd``, only accepted for 4-channel latents).
      dtype: compute dtype (``jnp.float32`` or ``jnp.bfloat16``).
      config: SD-VAE only: a preset name (``sd``, ``sdxl``, ``sd3``, ``flux1``) or a
        ``VAEConfig``, overriding a diffusers folder's ``config.json``.
      weights_dir: where named TAE weights live.

    Returns:
      ``(fns, params)``: pure functions and their float32 parameter pytree.

    Raises:
      AutoencoderError: unknown name or path.
      WeightsError: unreadable weights, or tensors that do not match the model (all listed).
    """
    text = str(name_or_path)
    if text in tae.TAE_VARIANTS:
        folder = Path(weights_dir or os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS_DIR)
        return _load_tae(tae.TAE_VARIANTS[text], folder, dtype)
    path = Path(text)
    if not path.exists():
        raise AutoencoderError(
            f"'{text}' is neither a known autoencoder ({', '.join(tae.TAE_VARIANTS)}) nor an "
            "existing path")
    if path.is_dir() and (folder := is_vq_export(path)):
        try:
            vq_config, params = load_vq_export(folder)
        except VQExportError as e:
            raise AutoencoderError(str(e)) from None
        return make_vq(vq_config, dtype, path.name), params
    if pair := _tae_pair(path):
        return _load_tae(pair[0], pair[1], dtype)
    if path.is_dir():
        if (path / "vae" / DIFFUSERS_WEIGHTS).is_file():
            path = path / "vae"
        if not (path / DIFFUSERS_WEIGHTS).is_file():
            raise AutoencoderError(
                f"{path}: folder holds neither {DIFFUSERS_WEIGHTS} nor a TAE weight pair")
    return _load_sd(path, config, dtype)

