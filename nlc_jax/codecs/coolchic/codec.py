"""The COOL-CHIC codec: :class:`~nlc_jax.codecs.base.OverfittedCodec` functions and the bitstream.

Fitting (pure, vmapped by ``nlc_jax.fit``): parameters are ``{"latents": (grid_0, …),
"hyper": (…), "arm", "upsampling", "synthesis"[, "ifce"]}``; coded values are ``round(gain ·
grid)`` with the phase's quantization proxy; loss = MSE on [0, 1] RGB + λ · bpp (bits of the
latents and hyper-latents from the float ARM over the valid pixels). Padded positions are zeroed
in every grid, so they cost no bits, add no distortion and leave the valid region exactly as the
decoder computes it at the true size.

File (``.nlc`` container, codec ``coolchic``): ``HEADER`` (architecture), ``NETWORKS``
(``param_coding``: per-group power-of-two steps, range coded under per-layer models, refined by
weight RDOQ),
``LATENTS`` (range coded with the integer ARM and IFCE, in passes, wavefront order).

Exactness: the latents and every network integer decode bit-exactly on any machine (integer
ARM, snapped coder parameters). The pixels are computed by the one numpy float32 function
:func:`reconstruct`, which ``finalize`` itself calls on the decoded values, so ``decode`` returns
exactly ``finalize``'s reconstruction on a machine with the same numpy/BLAS; another BLAS may
change a pixel by ±1 where a float32 value falls within rounding error of a .5 boundary.
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nlc_jax import compilation
from nlc_jax.bitstream.byteio import ByteReader, ByteWriter
from nlc_jax.bitstream.container import (
    Container,
    SectionType,
    read_image_container,
    write_container,
)
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.codecs import recipe
from nlc_jax.codecs.base import EncodeResult, Phase
from nlc_jax.codecs.coolchic.arch import Arch, init_networks, mac_per_pixel
from nlc_jax.codecs.coolchic.arm import IntArm, arm_float
from nlc_jax.codecs.coolchic.context_model import IntFeatures, float_contexts
from nlc_jax.codecs.coolchic.latent_coding import decode_latents, encode_latents
from nlc_jax.codecs.coolchic.synthesis import synthesize
from nlc_jax.codecs.gray import gray_rgb
from nlc_jax.codecs.overfitted.layers import ArchError, read_layers, write_layers, zeros_template
from nlc_jax.codecs.overfitted.upsampling import level_shape, upsample
from nlc_jax.configs.coolchic import get_config as preset_config
from nlc_jax.data.images import to_uint8
from nlc_jax.entropy import param_coding, weight_rdoq
from nlc_jax.entropy.context import causal_offsets
from nlc_jax.entropy.distributions import bits, laplace_pmf
from nlc_jax.entropy.quantization import quantize
from nlc_jax.metrics.psnr import psnr

NETWORKS = ("arm", "ifce", "upsampling", "synthesis")  # "ifce" only with inter-feature contexts
# 6: range-coded network weights (param_coding.RANGE); 5: edge padding (flag bit 2);
# 4: hyper-latents, IFCE, stabilisers, ARM relu(x + Wx + b) and log2-scale shift (4 and 5 are
# read by this decoder too: their weights are Exp-Golomb codes, and 4 never sets bit 2);
# 3: latents in 64×64 tiles (latent_coding.TILE); 2: 32×32 tiles; 1: 64-row stripes
HEADER_VERSION = 6
_READABLE_VERSIONS = (4, 5, 6)
# the version written for each ``model.weight_coding`` (Exp-Golomb: Cool-chic's, for ablations)
_WRITTEN_VERSION = {param_coding.RANGE: HEADER_VERSION, param_coding.EXP_GOLOMB: 5}


def weight_scheme(version: int) -> str:
    """The ``param_coding`` scheme of the ``NETWORKS`` section of a header version."""
    return param_coding.RANGE if version >= 6 else param_coding.EXP_GOLOMB


def encoder_gain(lmbda, fixed: float = 0.0):
    """Latent gain: ``fixed`` if non-zero, else Cool-chic's 16 / 20 (λ < 5e-4) / 24 (λ < 2e-4)."""
    if fixed:
        return fixed
    return jnp.where(lmbda < 2e-4, 24.0, jnp.where(lmbda < 5e-4, 20.0, 16.0))


def latent_bits(ctx: jax.Array, values: jax.Array, arm: dict, arch: Arch,
                valid: jax.Array | None = None) -> jax.Array:
    """Bits of the coded ``values`` ``[N]`` under the float ARM on their contexts ``[N, n]``
    (summed over ``valid`` ``[N]`` positions if given)."""
    loc, scale = arm_float(ctx, arm, arch.arm_hidden_layers)
    b = bits(laplace_pmf(values, loc, scale))
    return jnp.sum(b if valid is None else b * valid)


def synthesize_numpy(grids: list[np.ndarray], nets: dict, arch: Arch) -> np.ndarray:
    """Decoded integer grids (latents, then any hyper-latents, which are not used here) and
    dequantized networks → ``[H, W, out_channels]`` float32.

    The decoder's one numpy float32 path (pixels in [0, 1] for COOL-CHIC, a latent for CLRIC).
    """
    nets = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), nets)
    latents = grids[:arch.n_levels]
    feats = upsample([np.asarray(z, np.float32) for z in latents], nets["upsampling"], np,
                     edge=arch.edge_padding)
    return synthesize(feats, nets["synthesis"], arch, np)


def reconstruct(latents: list[np.ndarray], nets: dict, arch: Arch) -> np.ndarray:
    """Decoded integer grids and dequantized networks → ``[H, W, 3]`` uint8 (numpy float32)."""
    return to_uint8(synthesize_numpy(latents, nets, arch))


def _write_header(arch: Arch, version: int = HEADER_VERSION) -> bytes:
    w = ByteWriter().fixed("u8", version)
    w.uvarint(arch.n_levels).uvarint(arch.arm_context).uvarint(arch.arm_hidden_layers)
    w.uvarint(arch.n_hyper).uvarint(arch.hyper_start)
    w.uvarint(arch.ifce_levels).uvarint(arch.ifce_features)
    w.fixed("u8", int(arch.arm_stabiliser) | int(arch.synthesis_stabiliser) << 1
            | int(arch.edge_padding) << 2)
    write_layers(w, arch.synthesis)
    return w.getvalue()


def _read_header(data: bytes, out_channels: int = 3) -> tuple[Arch, int]:
    """``HEADER`` bytes → (architecture, header version)."""
    r = ByteReader(data, "coolchic header")
    version = r.fixed("u8")
    if version not in _READABLE_VERSIONS:
        raise BitstreamError(f"coolchic header version {version} is not supported (this decoder "
                             f"reads versions 4 to {HEADER_VERSION}; versions 1 to 3 came before "
                             "the hyper-latents and IFCE: re-encode them)")
    n_levels, ctx, hidden = r.uvarint(64), r.uvarint(64), r.uvarint(64)
    n_hyper, hyper_start = r.uvarint(64), r.uvarint(64)
    ifce_levels, ifce_features = r.uvarint(64), r.uvarint(64)
    flags = r.fixed("u8")
    if flags > (7 if version >= 5 else 3):
        raise BitstreamError("coolchic header: invalid flags")
    layers = read_layers(r)
    r.expect_end()
    try:
        arch = Arch(n_levels, ctx, hidden, layers, out_channels, n_hyper, hyper_start,
                    ifce_levels, ifce_features, bool(flags & 1), bool(flags & 2),
                    bool(flags & 4))
    except ArchError as err:
        raise BitstreamError(f"coolchic header: {err}") from None
    if n_hyper and not hyper_start:
        raise BitstreamError("coolchic header: hyper-latent level missing")
    return arch, version


class CoolChic(recipe.RecipeMixin):
    """COOL-CHIC 5-style overfitted codec (see the module docstring)."""

    name = "coolchic"
    #: image pixels per target position (bpp is per image pixel; CLRIC's latent is 8× down)
    pixels_per_position = 1

    def __init__(self, config=None):
        """``config`` from ``configs/coolchic.py``; ``None`` gives a decode-only codec (a file
        carries its own architecture)."""
        self.config = config
        if config is not None:
            self.arch = Arch.from_config(config.model)
            self.offsets = causal_offsets(self.arch.arm_context)
            self.weight_coding = str(config.model.get("weight_coding", "auto"))
            if self.weight_coding not in ("auto", *_WRITTEN_VERSION):
                raise ValueError(f"model.weight_coding must be auto, "
                                 f"{', '.join(_WRITTEN_VERSION)}; got {self.weight_coding!r}")

    @property
    def refines(self) -> bool:
        """Whether ``finalize(refine=True)`` can write another file than ``refine=False``
        (weight RDOQ is on)."""
        return bool(int(self.config.recipe.get("rdoq_passes", 0)))

    def arch_candidates(self) -> list[CoolChic]:
        """The codecs to fit for every image: this one, or with ``config.arch_candidates``
        (comma-separated presets, e.g. ``"lop,mop,hop"``) one per preset, each with that
        preset's ``model`` block and this config's recipe and λ. The pipeline keeps, per fit,
        the file with the lowest ``MSE + λ · bpp``."""
        names = [n.strip() for n in str(self.config.get("arch_candidates", "")).split(",")
                 if n.strip()]
        if not names:
            return [self]
        out = []
        for name in names:
            config = self.config.copy_and_resolve_references()
            config.model = preset_config(name).model
            config.arch_candidates, config.preset = "", name
            out.append(type(self)(config))
        return out

    # ---- recipe -------------------------------------------------------------------------
    def optimizer(self, phase: Phase) -> optax.GradientTransformation:
        r = self.config.recipe
        return optax.multi_transform(
            {"latents": recipe.latent_optimizer(r, phase),
             "nets": recipe.network_optimizer(r, phase)},
            lambda params: {k: ("latents" if k in ("latents", "hyper") else "nets")
                            for k in params})

    # ---- fitting ------------------------------------------------------------------------
    def prepare_target(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(image, np.float32) / 255.0

    def init(self, rng: jax.Array, target_shape: tuple[int, int, int]) -> dict:
        h, w = target_shape[:2]
        arch = self.arch.resolve(h, w)
        grids = tuple(jnp.zeros(level_shape(h, w, level), jnp.float32)
                      for level in arch.grid_levels())
        params = {"latents": grids[:arch.n_levels], **init_networks(rng, arch)}
        if arch.n_hyper:
            params["hyper"] = grids[arch.n_levels:]
        return params

    def _forward(self, params: dict, target: jax.Array, mask: jax.Array, lmbda: jax.Array,
                 quant) -> tuple[jax.Array, dict]:
        arch = self.arch.resolve(*target.shape[:2])
        gain = encoder_gain(lmbda, float(self.config.model.encoder_gain))
        levels = arch.grid_levels()
        masks = [mask[::2 ** level, ::2 ** level] for level in levels]
        raw = tuple(params["latents"]) + tuple(params.get("hyper", ()))
        grids = [quant(i, z * gain) * m for i, (z, m) in enumerate(zip(raw, masks, strict=True))]
        # One ARM evaluation over the contexts of every grid.
        ctx = float_contexts(grids, params, arch, self.offsets)
        values = jnp.concatenate([z.reshape(-1) for z in grids])
        valid = jnp.concatenate([m.reshape(-1) for m in masks])
        total_bits = latent_bits(ctx, values, params["arm"], arch, valid)
        latents, n = grids[:arch.n_levels], arch.n_levels
        feats = upsample(latents, params["upsampling"], jnp, masks[:n], arch.edge_padding)
        x = synthesize(feats, params["synthesis"], arch, jnp, mask)
        n_pixels = jnp.maximum(jnp.sum(mask), 1.0)
        mse = self._distortion(x, target, mask)
        bpp = total_bits / (n_pixels * self.pixels_per_position)
        loss = mse + lmbda * bpp
        aux = {"mse": mse, "bpp": bpp, "psnr_db": -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))}
        return loss, aux

    def _distortion(self, x: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
        """Masked MSE of the synthesis output ``x`` ``[H, W, C]`` against ``target``."""
        n = jnp.maximum(jnp.sum(mask), 1.0)
        return jnp.sum(jnp.square(x - target) * mask[..., None]) / (target.shape[-1] * n)

    def loss(self, params, target, mask, lmbda, phase: Phase, progress, rng):
        mode, temp, noise = recipe.proxy(self.config.recipe, phase, progress, lmbda)
        keys = jax.random.split(rng, self.arch.n_grids)

        def quant(i, x):
            return quantize(x, mode, keys[i], temp, noise)
        return self._forward(params, target, mask, lmbda, quant)

    def eval_loss(self, params, target, mask, lmbda):
        return self._forward(params, target, mask, lmbda,
                             lambda i, x: quantize(x, "round", None, 0.0, 0.0))

    # ---- bitstream ----------------------------------------------------------------------
    def code_fit(self, params, target: np.ndarray, lmbda: float, refine: bool = True
                 ) -> tuple[list[tuple[int, bytes]], list[np.ndarray], dict, Arch]:
        """Quantize and entropy-code one fit whose unpadded target is ``[h, w, C]`` (weight
        RDOQ after the step search unless ``refine`` is false).

        Returns the ``HEADER``, ``NETWORKS`` and ``LATENTS`` sections, the integer grids
        (latents, then hyper-latents), the dequantized networks (what the decoder will have) and
        the resolved architecture.
        """
        h, w = target.shape[:2]
        arch = self.arch.resolve(*np.shape(params["latents"][0])[:2])  # as in training
        gain = float(encoder_gain(lmbda, float(self.config.model.encoder_gain)))
        shapes = [level_shape(h, w, level) for level in arch.grid_levels()]
        raw = tuple(params["latents"]) + tuple(params.get("hyper", ()))
        grids = [np.rint(np.asarray(z, np.float32)[:lh, :lw] * np.float32(gain)).astype(np.int64)
                 for z, (lh, lw) in zip(raw, shapes, strict=True)]
        nets = {k: jax.tree_util.tree_map(np.asarray, params[k]) for k in NETWORKS if k in params}

        # Per-group step search, then weight RDOQ: distortion + λ · (latent + weight) bpp
        # (float ARM, hard latents).
        n = arch.n_levels
        coded = [jnp.asarray(g, jnp.float32) for g in grids]
        z = tuple(g / gain for g in coded)
        fixed = ({"latents": z[:n], **({"hyper": z[n:]} if arch.n_hyper else {})},
                 jnp.asarray(target), jnp.ones((h, w), jnp.float32), jnp.float32(lmbda))
        eval_fn = self._jitted("eval", lambda: compilation.jit(
            lambda nt, zs, x, m, lm: self.eval_loss({**zs, **nt}, x, m, lm)[0]))
        n_pixels = h * w * self.pixels_per_position
        # "auto": both schemes' step searches, the one of lower cost goes on (per-layer steps
        # and models pay 2 header bytes a layer, more than they save on tiny images)
        schemes = param_coding.SCHEMES if self.weight_coding == "auto" else (self.weight_coding,)
        searched = {scheme: param_coding.search_steps(
            nets, lambda nt: float(eval_fn(nt, *fixed)), lmbda, n_pixels, scheme=scheme)
            for scheme in schemes}
        scheme = min(searched, key=lambda name: searched[name][1])
        exps = searched[scheme][0]
        qnets = param_coding.quantize(nets, exps)
        if refine and self.refines:
            def make_cost(module, weights):
                return self._rdoq_cost(module, weights, coded, fixed, arch)
            qnets = weight_rdoq.refine(qnets, exps, make_cost, lmbda, n_pixels,
                                       int(self.config.recipe.rdoq_passes), scheme=scheme)
        deq = param_coding.dequantize(qnets, exps)

        arm, features = _int_model(qnets, exps, arch, shapes)
        latent_bytes = encode_latents(grids, self.offsets, arm, arch.passes(), features)
        param_bytes = param_coding.encode_params(qnets, exps, scheme)
        sections = [(SectionType.HEADER, _write_header(arch, _WRITTEN_VERSION[scheme])),
                    (SectionType.NETWORKS, param_bytes),
                    (SectionType.LATENTS, latent_bytes)]
        return sections, grids, deq, arch

    def _jitted(self, key, make):
        """A compiled helper of ``code_fit``, made once per codec (jit then caches it per input
        shape), so a dataset's files do not each recompile it (thread-safe: the pipeline
        codes the fits of a batch in parallel)."""
        cache = self.__dict__.setdefault("_jit_cache", {})
        with self.__dict__.setdefault("_jit_lock", threading.Lock()):
            if key not in cache:
                cache[key] = make()
            return cache[key]

    def _rdoq_cost(self, module: str, weights: dict, coded: list, fixed: tuple, arch: Arch):
        """Batched loss of one module's float weights (the others at ``weights``) for weight
        RDOQ: the synthesis on fixed upsampled features (distortion only), the ARM on fixed
        contexts (rate only), anything else through :meth:`eval_loss`. ``coded``: the integer
        grids (float32); ``fixed``: ``(latent params, target, mask, λ)``."""
        latents, target, mask, lmbda = fixed
        if module == "synthesis":
            def distortion(syn, feats, target, mask):
                return self._distortion(synthesize(feats, syn, arch, jnp), target, mask)
            fn = self._jitted(("rdoq", module, arch), lambda: compilation.jit(
                jax.vmap(distortion, in_axes=(0, None, None, None))))
            feats = upsample(coded[:arch.n_levels], weights["upsampling"], jnp,
                             edge=arch.edge_padding)
            return lambda stacked: fn(stacked, feats, target, mask)
        if module == "arm":
            def rate(arm, ctx, values, scale):
                return scale * latent_bits(ctx, values, arm, arch)
            fn = self._jitted(("rdoq", module, arch), lambda: compilation.jit(
                jax.vmap(rate, in_axes=(0, None, None, None))))
            ctx = float_contexts(coded, weights, arch, self.offsets)
            values = jnp.concatenate([z.reshape(-1) for z in coded])
            scale = lmbda / (jnp.sum(mask) * self.pixels_per_position)
            return lambda stacked: fn(stacked, ctx, values, scale)

        def loss(sub, weights, latents, target, mask, lmbda):
            return self.eval_loss({**latents, **weights, module: sub}, target, mask, lmbda)[0]
        fn = self._jitted(("rdoq", module, arch), lambda: compilation.jit(
            jax.vmap(loss, in_axes=(0, None, None, None, None, None))))
        return lambda stacked: fn(stacked, weights, latents, target, mask, lmbda)

    def finalize(self, params, target: np.ndarray, image: np.ndarray, lmbda: float,
                 refine: bool = True) -> EncodeResult:
        h, w = image.shape[:2]
        sections, grids, deq, arch = self.code_fit(params, target, lmbda, refine)
        data = write_container(self.name, h, w, 3, 8, sections)
        recon = reconstruct(grids, deq, arch)
        n = h * w
        info = {"bpp": 8.0 * len(data) / n, "psnr_db": float(psnr(image, recon)),
                "latent_bpp": 8.0 * len(sections[2][1]) / n,
                "network_bpp": 8.0 * len(sections[1][1]) / n,
                "mac_per_pixel": mac_per_pixel(arch)}
        return EncodeResult(data=data, reconstruction=recon, info=info)

    def decode(self, data: bytes) -> np.ndarray:
        c = read_image_container(data, self.name)
        grids, nets, arch = decode_fit(c, c.height, c.width)
        recon = reconstruct(grids, nets, arch)
        return gray_rgb(recon) if c.channels == 1 else recon


def _int_model(qnets: dict, exps: dict, arch: Arch,
               shapes: list[tuple[int, int]]) -> tuple[IntArm, IntFeatures]:
    """The integer ARM and IFCE of quantized networks (what encoder and decoder both run);
    ``exps`` names steps per layer or per module (``param_coding.step_of``).

    Raises:
      BitstreamError: a step of the entropy model's layers is missing.
    """
    def of(module):
        return {layer: {kind: param_coding.step_of(exps, module, layer, kind)
                        for kind in ("weight", "bias")} for layer in qnets[module]}
    try:
        arm = IntArm(qnets["arm"], of("arm"), arch.arm_hidden_layers)
        ifce = IntFeatures(arch, qnets.get("ifce"), of("ifce") if arch.ifce_levels else None,
                           shapes)
    except KeyError:
        raise BitstreamError("coolchic file: entropy model weights missing") from None
    return arm, ifce


def decode_fit(c: Container, height: int, width: int,
               out_channels: int = 3) -> tuple[list[np.ndarray], dict, Arch]:
    """The ``HEADER``/``NETWORKS``/``LATENTS`` sections of ``c`` → integer grids (latents, level
    0 being ``height × width``, then hyper-latents), dequantized networks and the architecture.

    Raises:
      BitstreamError: malformed or inconsistent sections.
    """
    arch, version = _read_header(c.section(SectionType.HEADER), out_channels)
    qnets, exps = param_coding.decode_params(c.section(SectionType.NETWORKS),
                                             zeros_template(init_networks, arch),
                                             weight_scheme(version))
    shapes = [level_shape(height, width, level) for level in arch.grid_levels()]
    arm, features = _int_model(qnets, exps, arch, shapes)
    grids = decode_latents(c.section(SectionType.LATENTS), shapes,
                           causal_offsets(arch.arm_context), arm, arch.passes(), features)
    return grids, param_coding.dequantize(qnets, exps), arch


def make_codec(config=None) -> CoolChic:
    """Registry factory; ``config=None`` gives a decode-only codec."""
    return CoolChic(config)


