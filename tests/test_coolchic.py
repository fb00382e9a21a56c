"""COOL-CHIC codec: architecture, masking, integer ARM, learning, bit-exact files, errors."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from coolchic_helpers import get_config, random_params, smooth_image

from nlc_jax.bitstream.container import SectionType, read_container, write_container
from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.codecs import recipe, registry
from nlc_jax.codecs.base import OverfittedCodec, Phase
from nlc_jax.codecs.coolchic import Arch, ArchError, CoolChic, mac_per_pixel
from nlc_jax.codecs.coolchic.arch import init_networks
from nlc_jax.codecs.coolchic.arm import LOG2_SCALE_SHIFT, IntArm, arm_int
from nlc_jax.codecs.coolchic.codec import encoder_gain, reconstruct, synthesize_numpy
from nlc_jax.codecs.coolchic.context_model import IntFeatures, float_contexts
from nlc_jax.codecs.coolchic.latent_coding import (
    STRIPES,
    TILE,
    _Layout,
    decode_latents,
    encode_latents,
    tile_context_mask,
    wavefront_slope,
)
from nlc_jax.codecs.coolchic.synthesis import synthesize
from nlc_jax.codecs.overfitted import layers as layers_module
from nlc_jax.codecs.overfitted.layers import Layer
from nlc_jax.codecs.overfitted.upsampling import level_shape, upsample
from nlc_jax.entropy import param_coding
from nlc_jax.entropy.coding import SCALE_TABLE, snap_params
from nlc_jax.entropy.context import causal_offsets, extract_context


def _codec(preset="fast", **recipe):
    config = get_config(preset)
    for k, v in recipe.items():
        config.recipe[k] = v
    return CoolChic(config)


def _quantized_arm(arch: Arch, seed: int = 0, k: int = 8):
    nets = init_networks(jax.random.key(seed), arch)
    rng = np.random.default_rng(seed)
    arm = jax.tree_util.tree_map(
        lambda a: np.asarray(a) + 0.3 * rng.standard_normal(a.shape).astype(np.float32),
        nets["arm"])
    exps = {"arm/weight": k, "arm/bias": k}
    return param_coding.quantize({"arm": arm}, exps)["arm"], {"weight": k, "bias": k}


def test_presets_mac_per_pixel():
    macs = {p: mac_per_pixel(Arch.from_config(get_config(p).model))
            for p in ("fast", "lop", "mop", "hop")}
    assert macs["lop"] < macs["mop"] < macs["hop"]
    assert 1800 <= macs["hop"] <= 2300          # Cool-chic HOP: 1943 MAC/pixel
    assert 350 <= macs["lop"] <= 600            # Cool-chic LOP: 482
    assert macs["fast"] < 600
    # hand count of a tiny architecture: ARM (0·4·4 + 2·4)·(1 + 1/4), upsampling 8 + 14/4,
    # synthesis 2·3 (1x1) + 3·3·9 (3x3)
    tiny = Arch(2, 4, 0, (Layer.parse("3-1-linear-relu"), Layer.parse("3-3-residual-none")))
    assert mac_per_pixel(tiny) == pytest.approx(8 * 1.25 + 8 + 14 / 4 + 6 + 81)


def test_config_errors_are_one_line():
    with pytest.raises(ValueError, match="unknown coolchic preset"):
        get_config("huge")
    with pytest.raises(ArchError, match="bad synthesis layer"):
        Layer.parse("16-5-linear-relu")
    with pytest.raises(ArchError, match="3 outputs"):
        Arch(7, 8, 1, (Layer.parse("16-1-linear-relu"),))


def test_protocol_and_registry():
    codec = registry.make(get_config("fast"))
    assert isinstance(codec, OverfittedCodec)
    phases = codec.recipe()
    assert [p.name for p in phases] == ["warmup", "warmup2", "main", "final"]
    assert phases[0].keep == 2 and phases[1].keep == 1
    assert registry.decoder("coolchic").decode is not None
    # Cool-chic's warm-up rule: a 2000-step hop recipe is 5×50 + 2×50 + 1150 + 500 steps
    hop = get_config("hop")
    hop.recipe.n_itr = 2000
    assert [p.steps for p in CoolChic(hop).recipe()] == [50, 50, 1150, 500]
    hop.recipe.n_itr = 10_000
    assert [p.steps for p in CoolChic(hop).recipe()] == [200, 200, 8100, 500]
    # Cool-chic's noise: Gaussian, std (-0.432·log10 λ + 0.747)/10 in the warm-ups, then the
    # annealed 0.22 → 0.15; the final phase rounds hard (latents fixed)
    warm, _, main, final = CoolChic(hop).recipe()
    mode, temp, noise = recipe.proxy(hop.recipe, warm, 0.0, jnp.float32(1e-3))
    assert mode == "softround_gaussian" and temp == 0.35
    np.testing.assert_allclose(float(noise), (0.432 * 3 + 0.747) / 10, rtol=1e-6)
    assert recipe.proxy(hop.recipe, main, 1.0, jnp.float32(1e-3))[1:] == pytest.approx((0.08, 0.15))
    assert recipe.proxy(hop.recipe, final, 0.5, jnp.float32(1e-3))[0] == "round"
    with pytest.raises(BitstreamError, match="no decoder"):
        registry.decoder("nonexistent")


@pytest.mark.parametrize("edge", [False, True])
def test_padded_bucket_matches_true_size(edge):
    """Masking padded grids (or, with edge padding, repeating their last valid row and column)
    makes the valid region equal to the decoder's true-size result (and the jax convolutions
    equal the decoder's numpy polyphase sums)."""
    arch = dataclasses.replace(Arch.from_config(get_config("mop").model), edge_padding=edge)
    nets = init_networks(jax.random.key(0), arch)
    keys = iter(jax.random.split(jax.random.key(1), 64))
    nets = jax.tree_util.tree_map(lambda a: a + 0.2 * jax.random.normal(next(keys), a.shape),
                                  nets)
    h, w, hb, wb = 37, 21, 64, 48
    rng = np.random.default_rng(0)
    lat = [rng.integers(-3, 4, size=level_shape(hb, wb, i)).astype(np.float32)
           for i in range(arch.n_levels)]
    mask = np.zeros((hb, wb), np.float32)
    mask[:h, :w] = 1
    masks = [jnp.asarray(mask[::2 ** i, ::2 ** i]) for i in range(arch.n_levels)]
    bucket = jax.jit(lambda nets, lat: synthesize(
        upsample([z * m for z, m in zip(lat, masks, strict=True)], nets["upsampling"], jnp,
                 masks, edge),
        nets["synthesis"], arch, jnp, jnp.asarray(mask)))(nets, [jnp.asarray(z) for z in lat])
    nets_np = jax.tree_util.tree_map(np.asarray, nets)
    true = synthesize(upsample([z[:level_shape(h, w, i)[0], :level_shape(h, w, i)[1]]
                                for i, z in enumerate(lat)], nets_np["upsampling"], np,
                               edge=edge),
                      nets_np["synthesis"], arch, np)
    assert true.shape == (h, w, 3)
    np.testing.assert_allclose(np.asarray(bucket)[:h, :w], true, atol=1e-5)


@pytest.mark.parametrize("edge", [False, True])
def test_numpy_synthesis_in_strips_matches_jax(edge):
    """The decoder's numpy synthesis (1×1 layers strip by strip, 3×3 layers as shifted
    matmuls) computes what the jax synthesis computes on an image of several strips."""
    arch = dataclasses.replace(Arch.from_config(get_config("hop").model), edge_padding=edge)
    nets = init_networks(jax.random.key(2), arch)
    keys = iter(jax.random.split(jax.random.key(3), 64))
    nets = jax.tree_util.tree_map(lambda a: a + 0.2 * jax.random.normal(next(keys), a.shape),
                                  nets)
    h, w = 150, 131
    assert h * w > layers_module.STRIP_PIXELS
    feats = np.random.default_rng(1).normal(size=(h, w, arch.n_levels)).astype(np.float32)
    ref = jax.jit(lambda n, f: synthesize(f, n["synthesis"], arch, jnp))(nets, feats)
    nets_np = jax.tree_util.tree_map(np.asarray, nets)
    out = synthesize(feats, nets_np["synthesis"], arch, np)
    assert out.dtype == np.float32 and out.shape == (h, w, 3)
    np.testing.assert_allclose(out, np.asarray(ref), rtol=1e-4, atol=1e-4)


def test_loss_ignores_padding():
    codec = _codec()
    image = smooth_image(13, 19)
    target = codec.prepare_target(image)
    params_true = random_params(codec, 13, 19, seed=3)
    hb, wb = 32, 32
    padded = np.full((hb, wb, 3), 0.77, np.float32)   # garbage in the padding
    padded[:13, :19] = target
    mask = np.zeros((hb, wb), np.float32)
    mask[:13, :19] = 1
    params_b = codec.init(jax.random.key(0), (hb, wb, 3))
    latents = []
    for zt, zb in zip(params_true["latents"], params_b["latents"], strict=True):
        junk = 5.0 * jax.random.normal(jax.random.key(9), zb.shape)  # padded latents: anything
        latents.append(junk.at[:zt.shape[0], :zt.shape[1]].set(zt))
    params_b = {**params_true, "latents": tuple(latents)}
    lmbda = jnp.float32(1e-2)
    eval_loss = jax.jit(codec.eval_loss)
    _, aux_t = eval_loss(params_true, jnp.asarray(target), jnp.ones((13, 19)), lmbda)
    _, aux_b = eval_loss(params_b, jnp.asarray(padded), jnp.asarray(mask), lmbda)
    assert float(aux_t["bpp"]) > 0.1
    np.testing.assert_allclose(float(aux_b["mse"]), float(aux_t["mse"]), rtol=1e-4)
    np.testing.assert_allclose(float(aux_b["bpp"]), float(aux_t["bpp"]), rtol=1e-4)


def test_loss_learns():
    codec = _codec()
    image = smooth_image(16, 16)
    target = jnp.asarray(codec.prepare_target(image))
    mask = jnp.ones((16, 16))
    lmbda = jnp.float32(1e-3)
    phase = Phase("main", 100)
    params = codec.init(jax.random.key(0), target.shape)
    opt = codec.optimizer(phase)
    state = opt.init(params)

    @jax.jit
    def step(params, state, i):
        grads = jax.grad(lambda p: codec.loss(p, target, mask, lmbda, phase, i / 100.0,
                                              jax.random.key(i))[0])(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    before = float(codec.eval_loss(params, target, mask, lmbda)[0])
    for i in range(100):
        params, state = step(params, state, i)
    after, aux = codec.eval_loss(params, target, mask, lmbda)
    assert float(after) < 0.5 * before
    assert float(aux["psnr_db"]) > 20


def test_integer_arm_is_batch_independent_and_snapped():
    arch = Arch.from_config(get_config("hop").model)
    qarm, exps = _quantized_arm(arch)
    ctx = np.random.default_rng(1).integers(-20, 21, size=(300, arch.arm_width))
    loc, scale = arm_int(ctx, qarm, exps, arch.arm_hidden_layers)
    parts = [arm_int(ctx[i:i + 7], qarm, exps, arch.arm_hidden_layers) for i in range(0, 300, 7)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), loc)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), scale)
    snapped_loc, snapped_scale = snap_params("laplace", loc, scale)
    np.testing.assert_array_equal(snapped_scale, scale)   # already a table entry
    assert np.all(np.abs(snapped_loc - loc) <= 1 / 128)
    assert np.all(loc * 256 == np.round(loc * 256))         # fixed point, 8 fractional bits


def _arm_reference(ctx, qarm, exps, n_hidden):
    """The integer ARM in int64 arithmetic with shifts (exact; the spec arm_int must meet):
    hidden ``clip(a + layer(a), 0, L)``, output ``clip(layer(h) + stab(x), ±L)``."""
    limit, kw, kb = 2 ** 26, exps["weight"], exps["bias"]

    def layer(a, p):
        shift = 8 + kw - kb
        b = np.asarray(p["b"], np.int64)
        b = b << shift if shift >= 0 else b >> -shift
        return (a @ np.asarray(p["w"], np.int64) + b) >> kw
    x = np.clip(np.asarray(ctx, np.int64) << 8, -limit, limit)
    a = x
    for i in range(n_hidden):
        a = np.clip(a + layer(a, qarm[f"h{i}"]), 0, limit)
    out = np.clip(layer(a, qarm["out"]), -limit, limit)
    if "stab" in qarm:
        out = np.clip(out + np.clip(layer(x, qarm["stab"]), -limit, limit), -limit, limit)
    idx = np.clip(((out[:, 1] + 8) >> 4) + (6 + LOG2_SCALE_SHIFT) * 16, 0, 320)
    return out[:, 0] / 256.0, idx


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("stabiliser", [False, True])
def test_integer_arm_matches_integer_arithmetic(big, stabiliser):
    """The float64 integer ARM (pre-scaled weights, folded ReLU/clip) equals int64 arithmetic,
    also where activations saturate at the clip limit."""
    rng = np.random.default_rng(7)
    n, hidden, lim = 24, 2, (2 ** 20 if big else 60)
    qarm = {f"h{i}": {"w": rng.integers(-lim, lim, (n, n)), "b": rng.integers(-lim, lim, n)}
            for i in range(hidden)}
    qarm["out"] = {"w": rng.integers(-lim, lim, (n, 2)), "b": rng.integers(-lim, lim, 2)}
    if stabiliser:
        qarm["stab"] = {"w": rng.integers(-lim, lim, (n, 2)), "b": rng.integers(-lim, lim, 2)}
    for kw, kb in ((8, 8), (3, 12), (16, 0)):
        ctx = rng.integers(-(2 ** 19 if big else 30), 2 ** 19 if big else 30, (400, n))
        loc, scale = arm_int(ctx, qarm, {"weight": kw, "bias": kb}, hidden)
        ref_loc, ref_idx = _arm_reference(ctx, qarm, {"weight": kw, "bias": kb}, hidden)
        np.testing.assert_array_equal(loc, ref_loc)
        np.testing.assert_array_equal(scale, SCALE_TABLE[ref_idx])


@pytest.mark.parametrize("shape, tile", [((1, 1), TILE), ((5, 3), TILE), ((70, 33), TILE),
                                         ((45, 100), TILE), ((130, 70), TILE), ((37, 29), (8, 16)),
                                         ((70, 33), STRIPES)])
def test_latent_coding_round_trip(shape, tile):
    """Decode equals encode at sizes that are not multiples of the tile (edge tiles, levels
    smaller than one tile), for the format's tile and other layouts."""
    arch = Arch.from_config(get_config("mop").model).resolve(*shape)
    qarm, exps = _quantized_arm(arch, seed=2)
    arm = IntArm(qarm, exps, arch.arm_hidden_layers)
    offsets = causal_offsets(arch.arm_context)
    rng = np.random.default_rng(0)
    shapes = [level_shape(*shape, level) for level in arch.grid_levels()]
    grids = [rng.laplace(0, 1.5, s).round().astype(np.int64) for s in shapes]
    grids[0][0, 0] = 5000        # far outside any scale: escaped, never clipped
    ifce = jax.tree_util.tree_map(
        lambda a: np.rint(np.asarray(a) * 256 + rng.normal(0, 20, a.shape)).astype(np.int64),
        init_networks(jax.random.key(3), arch)["ifce"])
    features = IntFeatures(arch, ifce, {"weight": 8, "bias": 8}, shapes)
    data = encode_latents(grids, offsets, arm, arch.passes(), features, tile)
    out = decode_latents(data, shapes, offsets, arm, arch.passes(), features, tile)
    for a, b in zip(grids, out, strict=True):
        np.testing.assert_array_equal(a, b)
    # the inter-feature context is used: without it the same file does not decode
    if shape[0] * shape[1] > 100:
        plain = IntFeatures(arch, jax.tree_util.tree_map(np.zeros_like, ifce),
                            {"weight": 8, "bias": 8}, shapes)
        try:
            wrong = decode_latents(data, shapes, offsets, arm, arch.passes(), plain, tile)
        except BitstreamError:
            return
        assert any(not np.array_equal(a, b) for a, b in zip(grids, wrong, strict=True))


def test_integer_ifce_matches_float_contexts():
    """The integer IFCE features (what the decoder appends to the ARM context) equal the float
    training contexts' IFCE part up to the fixed point's flooring, on every IFCE level; the
    other grids get zeros there."""
    h, w = 45, 70
    arch = Arch.from_config(get_config("hop").model).resolve(h, w)
    shapes = [level_shape(h, w, level) for level in arch.grid_levels()]
    rng = np.random.default_rng(5)
    grids = [rng.integers(-6, 7, s) for s in shapes]
    nets = init_networks(jax.random.key(2), arch)
    k = 10
    qifce = jax.tree_util.tree_map(
        lambda a: np.rint((np.asarray(a) + rng.normal(0, 0.3, a.shape)) * 2 ** k).astype(np.int64),
        nets["ifce"])
    deq = jax.tree_util.tree_map(lambda q: jnp.asarray(q / 2 ** k, jnp.float32), qifce)
    ctx = np.asarray(float_contexts([jnp.asarray(g, jnp.float32) for g in grids],
                                    {**nets, "ifce": deq}, arch, causal_offsets(arch.arm_context)))
    starts = np.cumsum([0] + [a * b for a, b in shapes])
    features = IntFeatures(arch, qifce, {"weight": k, "bias": k}, shapes)
    n = arch.arm_context
    for p, members in enumerate(arch.passes()):
        extra = features(p, grids)
        for g, f in zip(members, extra, strict=True):
            train = ctx[starts[g]:starts[g + 1], n:].reshape(shapes[g] + (-1,))
            np.testing.assert_allclose(f / 256.0, train, atol=1.5 / 256)
            assert (p == 0) == (not np.any(f))


def test_tile_context_mask():
    offsets = np.array([[-1, 0], [0, -1], [-2, 3]])
    m = tile_context_mask(70, 40, offsets, (32, 16))
    assert m.shape == (70, 40, 3) and m.dtype == np.float32
    assert m[32, 5].tolist() == [0, 1, 0] and m[33, 5].tolist() == [1, 1, 0]   # tile top
    assert m[34, 5].tolist() == [1, 1, 1] and m[34, 12].tolist() == [1, 1, 1]
    assert m[34, 13].tolist() == [1, 1, 0] and m[34, 16].tolist() == [1, 0, 1]  # right, left
    # header version 1's stripes are the tile mask with full-width tiles
    stripes = tile_context_mask(130, 9, offsets, STRIPES)
    assert stripes[64, 3].tolist() == [0, 1, 0] and stripes[66, 8].tolist() == [1, 1, 1]
    np.testing.assert_array_equal(np.asarray(tile_context_mask(70, 40, offsets, (32, 16), jnp)),
                                  m)


def _coding_to_raster(layout, shapes):
    """Position in the concatenated raster order of every latent, in the layout's coding order."""
    starts = np.cumsum([0] + [h * w for h, w in shapes])
    flat = np.full(layout.size, -1)
    for level, y0, x0, view in layout._views(flat):
        h, w = view.shape
        view[...] = (starts[level] + (y0 + np.arange(h))[:, None] * shapes[level][1]
                     + x0 + np.arange(w)[None, :])
    return flat[layout.index]


@pytest.mark.parametrize("tile", [TILE, (8, 16)])
def test_tile_contexts_never_reach_another_tile(tile):
    """The decoder's contexts equal the training contexts (extract_context × tile mask), and
    changing every latent outside one tile leaves that tile's contexts unchanged."""
    offsets = causal_offsets(24)
    y0, x0 = tile
    shapes = [(2 * y0 + 13, 2 * x0 + 7), (y0 + 5, x0 + 3), (12, 18)]  # edge tiles everywhere
    rng = np.random.default_rng(3)
    grids = [rng.integers(-9, 10, s) for s in shapes]
    layout = _Layout(shapes, offsets, tile)
    pos = _coding_to_raster(layout, shapes)
    ctx = layout.context(layout.fill(grids), 0, len(layout.index))
    train = np.concatenate([
        (np.asarray(extract_context(jnp.asarray(g, jnp.float32), offsets))
         * tile_context_mask(*g.shape, offsets, tile)).reshape(-1, len(offsets))
        for g in grids])
    np.testing.assert_array_equal(ctx, train[pos])
    # one tile of level 0 (second tile row and column) inside changed surroundings
    other = [g + 100 for g in grids]
    other[0][y0:2 * y0, x0:2 * x0] = grids[0][y0:2 * y0, x0:2 * x0]
    ctx_other = layout.context(layout.fill(other), 0, len(layout.index))
    inside = np.zeros(len(pos), bool)
    inside[np.arange(shapes[0][0] * shapes[0][1]).reshape(shapes[0])[y0:2 * y0, x0:2 * x0]] = True
    sel = inside[pos]
    assert sel.sum() == y0 * x0
    np.testing.assert_array_equal(ctx_other[sel], ctx[sel])
    assert not np.array_equal(ctx_other[~sel], ctx[~sel])
    # wavefronts: at most cols + s·(rows - 1) decoder steps, whatever the image size
    assert layout.n_waves <= tile[1] + wavefront_slope(offsets) * (tile[0] - 1)


@pytest.mark.parametrize("shape", [(1, 1), (17, 23)])
def test_file_round_trip_is_bit_exact(shape):
    codec = _codec()
    image = smooth_image(*shape, seed=1)
    params = random_params(codec, *shape, seed=4)
    result = codec.finalize(params, codec.prepare_target(image), image, 1e-3)
    assert result.reconstruction.shape == (*shape, 3)
    assert result.info["bpp"] == pytest.approx(8 * len(result.data) / (shape[0] * shape[1]))
    assert result.info["mac_per_pixel"] == pytest.approx(mac_per_pixel(codec.arch))
    decoded = registry.decode_bytes(result.data)
    np.testing.assert_array_equal(decoded, result.reconstruction)
    # a decode-only codec (no config) reads it too
    np.testing.assert_array_equal(CoolChic().decode(result.data), result.reconstruction)


def test_corrupt_and_truncated_files_raise_bitstream_error():
    codec = _codec()
    image = smooth_image(24, 20, seed=2)
    data = codec.finalize(random_params(codec, 24, 20, seed=5), codec.prepare_target(image),
                          image, 1e-3).data
    for bad in (data[:len(data) // 2], data[:-1], b"", b"NLC" + b"\x00" * 5):
        with pytest.raises(BitstreamError):
            registry.decode_bytes(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x55
    with pytest.raises(BitstreamError):
        registry.decode_bytes(bytes(flipped))


@pytest.mark.parametrize("old_version", [1, 2, 3])
def test_older_header_versions_are_refused_clearly(old_version):
    """Files of the striped (1), 32×32-tile (2) and pre-hyper-latent (3) formats must not
    decode into garbage."""
    codec = _codec()
    image = smooth_image(9, 11, seed=3)
    data = codec.finalize(random_params(codec, 9, 11, seed=7), codec.prepare_target(image),
                          image, 1e-3).data
    c = read_container(data)
    sections = [(s.type, bytes([old_version]) + s.payload[1:]
                 if s.type == SectionType.HEADER else s.payload) for s in c.sections]
    old = write_container("coolchic", c.height, c.width, c.channels, c.bit_depth, sections)
    with pytest.raises(BitstreamError, match=f"version {old_version} is not supported"):
        registry.decode_bytes(old)


@pytest.mark.parametrize("version,edge", [(4, False), (4, True), (5, False), (5, True)])
def test_version_4_and_5_files_still_decode(version, edge):
    """Version 6 changed only the weights' coding (range coded instead of Exp-Golomb) and 5 only
    added the edge-padding flag: files written as versions 5 and 4 (which never sets the flag)
    decode as before, and a version-4 header claiming edge padding is refused."""
    config = get_config("fast")
    config.model.edge_padding = edge
    config.model.weight_coding = "exp-golomb"  # writes version 5
    codec = CoolChic(config)
    image = smooth_image(9, 11, seed=3)
    result = codec.finalize(random_params(codec, 9, 11, seed=7), codec.prepare_target(image),
                            image, 1e-3)
    c = read_container(result.data)
    assert c.section(SectionType.HEADER)[0] == 5
    sections = [(s.type, bytes([version]) + s.payload[1:]
                 if s.type == SectionType.HEADER else s.payload) for s in c.sections]
    old = write_container("coolchic", c.height, c.width, c.channels, c.bit_depth, sections)
    if edge and version == 4:
        with pytest.raises(BitstreamError, match="invalid flags"):
            registry.decode_bytes(old)
    else:
        np.testing.assert_array_equal(registry.decode_bytes(old), result.reconstruction)


@pytest.mark.parametrize("size", [(24, 20), (64, 48)])
def test_weight_coding_auto_keeps_the_cheaper_scheme(size):
    """Version 6 (``model.weight_coding = "range"``: steps per layer, range coding) and version
    5 (steps per module, Exp-Golomb) files of the same fit both decode to their reconstruction;
    ``auto`` (the default) writes the same file as the one of lower cost (MSE + λ·bpp; on tiny
    images the per-layer header bytes may not pay). A wrong value is refused in one line."""
    from nlc_jax.fit.coding import rd_cost

    image = smooth_image(*size, seed=4)
    costs, versions = {}, {}
    for coding in ("exp-golomb", "range", "auto"):
        config = get_config("fast")
        config.model.weight_coding = coding
        codec = CoolChic(config)
        params = random_params(codec, *size, seed=8, scale=0.05)
        result = codec.finalize(params, codec.prepare_target(image), image, 1e-2)
        versions[coding] = read_container(result.data).section(SectionType.HEADER)[0]
        np.testing.assert_array_equal(registry.decode_bytes(result.data), result.reconstruction)
        costs[coding] = rd_cost(result.data, result.reconstruction, image, 1e-2)
    assert versions["exp-golomb"] == 5 and versions["range"] == 6
    cheaper = min(("exp-golomb", "range"), key=costs.get)
    assert versions["auto"] == versions[cheaper] and costs["auto"] == costs[cheaper], costs
    config = get_config("fast")
    config.model.weight_coding = "huffman"
    with pytest.raises(ValueError, match="model.weight_coding must be auto"):
        CoolChic(config)


def test_step_search_keeps_small_biases():
    """Regression (λ = 4e-4 colour shift on kodim01): steps that round a whole group to zero tie
    in cost and used to end the search, zeroing small synthesis biases."""
    tree = {"syn": {"w": np.array([0.9, -0.7], np.float32),
                    "b": np.array([0.1, -0.08, 0.05], np.float32)}}

    def squared_error(t):
        return float(sum(np.sum((np.asarray(t["syn"][n]) - tree["syn"][n]) ** 2)
                         for n in ("w", "b")))
    exps, cost = param_coding.search_steps(tree, squared_error, 1e-3, 1000)
    deq = param_coding.dequantize(param_coding.quantize(tree, exps), exps)
    np.testing.assert_allclose(deq["syn"]["b"], tree["syn"]["b"], atol=0.01)
    assert cost < 1e-3


def test_finalize_reproduces_the_float_model():
    """The quantized file decodes to (almost) what the float model computes, even when the
    synthesis biases carry a colour offset smaller than a coarse step."""
    codec = _codec()
    h, w, lmbda = 24, 20, 1e-6
    params = random_params(codec, h, w, seed=6, scale=0.05)
    syn = dict(params["synthesis"])
    last = f"l{len(codec.arch.synthesis) - 1}"
    syn[last] = {**syn[last], "b": syn[last]["b"] + jnp.array([0.1, -0.1, 0.06])}
    gain = float(encoder_gain(lmbda))
    grids = [np.rint(np.asarray(z) * gain) for z in params["latents"]]
    params = {**params, "synthesis": syn, "latents": tuple(jnp.asarray(g / gain) for g in grids)}
    nets = {k: jax.tree_util.tree_map(np.asarray, params[k]) for k in ("upsampling", "synthesis")}
    # target: the float model itself (unclipped), so zero distortion is reachable
    target = synthesize_numpy(grids, nets, codec.arch)
    image = reconstruct(grids, nets, codec.arch)
    result = codec.finalize(params, target, image, lmbda)
    assert result.info["psnr_db"] > 40.0
    mean_shift = np.abs(result.reconstruction.mean((0, 1)) - image.mean((0, 1)))
    assert mean_shift.max() < 1.0
