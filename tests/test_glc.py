"""GLC: vector quantizer, VQ autoencoder interface, hyper-index coding, four-part masks, and the
codec (bit-exact round trip, rate monotone in the rate index, bad files and missing models), also
with the factorized hyper module (ablation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import config_dict

from nlc_jax.autoencoders import VQConfig, VQSettings, load, make_vq
from nlc_jax.autoencoders.vector_quantizer import (
    VectorQuantizer,
    nearest_codes,
    update_state,
    usage_metrics,
)
from nlc_jax.bitstream import BitstreamError, ByteReader, ByteWriter, SectionType, write_container
from nlc_jax.bitstream.container import read_image_container
from nlc_jax.codecs import registry
from nlc_jax.codecs.glc import GLCCodec, file_weights_hash, hyper_coding
from nlc_jax.codecs.glc.latent_codec import four_part_masks
from nlc_jax.codecs.glc.training import GLCConfigError, export_untrained, make_task
from nlc_jax.codecs.weights import CheckpointError, load_inference


def tiny_config(**overrides):
    from nlc_jax.configs.glc import get_config

    c = get_config("tiny")
    c.loss.lpips_weight = 0.0  # no VGG in the fast tests
    c.update(overrides)
    return c


def image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)
    return np.clip(smooth[:h, :w] + rng.integers(-10, 10, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(stage-I export, stage-II export) of randomly initialised tiny models (untrained weights
    code just as exactly)."""
    root = tmp_path_factory.mktemp("glc")
    export_untrained(tiny_config(), root / "ae", root / "tc")
    return root / "ae", root / "tc"


@pytest.fixture(scope="module")
def factorized_exports(tmp_path_factory):
    """(stage-I export, stage-II export) of untrained tiny models with the factorized hyper
    module."""
    root = tmp_path_factory.mktemp("glc_factorized")
    c = tiny_config()
    c.latent.hyper_module = "factorized"
    export_untrained(c, root / "ae", root / "tc")
    return root / "ae", root / "tc"


def codec(path, **kw):
    return registry.make(config_dict.ConfigDict({"codec": "glc", "checkpoint": str(path), **kw}))


# --- vector quantizer ------------------------------------------------------------------------

SETTINGS = VQSettings(codebook_size=8, dim=4)


def test_straight_through_gradient_and_losses():
    vq = VectorQuantizer(SETTINGS)
    z = jax.random.normal(jax.random.key(0), (2, 3, 3, 4))
    params = vq.init(jax.random.key(1), z)

    def f(p, z):
        q, _, aux = vq.apply(p, z)
        return jnp.sum(q * 3.0) + aux["vq_loss"]

    g_z = jax.grad(f, argnums=1)(params, z)
    q, idx, aux = vq.apply(params, z)
    codebook = params["params"]["codebook"]
    np.testing.assert_allclose(q, codebook[idx], atol=1e-6)  # forward: the nearest code
    np.testing.assert_array_equal(idx, nearest_codes(z, codebook))
    # backward: identity (3.0 everywhere) plus the commitment term's gradient
    commit = 2.0 * SETTINGS.beta * (z - codebook[idx]) / z.size
    np.testing.assert_allclose(g_z, 3.0 + commit, rtol=1e-4, atol=1e-5)
    g_cb = jax.grad(f)(params, z)["params"]["codebook"]
    used = np.unique(np.asarray(idx))
    assert np.all(np.abs(np.asarray(g_cb)[used]).sum(-1) > 0)  # the codebook loss moves them
    assert np.all(np.asarray(g_cb)[np.setdiff1d(np.arange(8), used)] == 0)
    m = usage_metrics(aux["stats"]["counts"], params["params"]["usage"], SETTINGS)
    assert 1.0 <= float(m["perplexity"]) <= 8.0 and float(m["used"]) == len(used) / 8


def test_ema_codebook_and_dead_code_restart():
    settings = VQSettings(codebook_size=8, dim=4, ema=True, ema_decay=0.5, usage_decay=0.5,
                          restart_threshold=0.5)
    vq = VectorQuantizer(settings)
    z = jax.random.normal(jax.random.key(0), (64, 4)) + 5.0
    params = vq.init(jax.random.key(1), z)
    g = jax.grad(lambda p: vq.apply(p, z)[2]["vq_loss"])(params)["params"]
    assert not np.any(np.asarray(g["codebook"])) and not np.any(np.asarray(g["ema_sum"]))
    p = params["params"]
    for i in range(6):
        _, idx, aux = vq.apply({"params": p}, z)
        p = update_state(p, aux["stats"], settings, jax.random.key(i))
    # restarted codes come from the inputs (near 5), and the EMA pulls codes onto their means
    assert float(jnp.min(p["codebook"])) > 2.0
    _, idx, _ = vq.apply({"params": p}, z)
    err = jnp.mean(jnp.square(p["codebook"][idx] - z))
    assert float(err) < float(jnp.mean(jnp.square(z - z.mean(0))))
    l2 = VectorQuantizer(VQSettings(8, 4, l2_normalize=True))
    q, _, _ = l2.apply(l2.init(jax.random.key(2), z), z)
    np.testing.assert_allclose(jnp.linalg.norm(q, axis=-1), 1.0, rtol=1e-3)


def test_hyper_codes_restart_after_the_configured_usage_decay():
    """The hyper VQ's usage EMA comes from ``latent.hyper_usage_decay`` (an export without the
    key keeps 0.99); with 0.9 the unused codes of the initial codebook restart within ~35
    steps instead of all at once after ~350."""
    from nlc_jax.codecs.glc.training import build_latent_codec, latent_settings

    c = tiny_config()
    settings = latent_settings(c)
    assert settings["hyper_usage_decay"] == c.latent.hyper_usage_decay == 0.9
    hyper = build_latent_codec(settings, 16, c.lmbdas).hyper
    assert hyper.usage_decay == 0.9
    old = {k: v for k, v in settings.items() if k != "hyper_usage_decay"}
    assert build_latent_codec(old, 16, c.lmbdas).hyper.usage_decay == 0.99
    z = jax.random.normal(jax.random.key(0), (16, hyper.dim)) + 3.0  # far from U(±1/K) codes

    def restarted_after_40_steps(settings):
        vq = VectorQuantizer(settings)
        p = vq.init(jax.random.key(1), z)["params"]
        for step in range(40):
            _, _, aux = vq.apply({"params": p}, z)
            p = update_state(p, aux["stats"], settings, jax.random.key(step))
        return int(jnp.sum(jnp.abs(p["codebook"]).mean(-1) > 1.0))

    # the codes no input picked at first are now input vectors (near 3), with 0.99 none yet
    assert restarted_after_40_steps(hyper) >= hyper.codebook_size * 3 // 4
    assert restarted_after_40_steps(build_latent_codec(old, 16, c.lmbdas).hyper) == 0


def test_vq_autoencoder_interface(exports):
    fns, params = load(str(exports[0]))
    assert fns.factor == 16 and fns.latent_channels == 16
    y = fns.encode(params, jnp.zeros((1, 64, 32, 3)))
    assert y.shape == (1, 4, 2, 16) and fns.decode(params, y).shape == (1, 64, 32, 3)
    cfg = VQConfig(channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_factors=(),
                   z_channels=8, norm_groups=4, quantizer=VQSettings(16, 4))
    assert make_vq(cfg).factor == 2
    with pytest.raises(ValueError, match="norm_groups"):
        VQConfig(channels=6, norm_groups=4)


# --- coding helpers --------------------------------------------------------------------------

def test_fixed_length_indices_and_prior_counts():
    idx = np.array([[0, 5], [31, 17]])
    data = hyper_coding.pack_indices(idx, 32)
    assert len(data) == 3  # 4 × 5 bits
    np.testing.assert_array_equal(hyper_coding.unpack_indices(data, 4, 32), idx.reshape(-1))
    with pytest.raises(BitstreamError):
        hyper_coding.unpack_indices(data[:-1], 4, 32)
    with pytest.raises(BitstreamError, match="outside"):
        hyper_coding.unpack_indices(b"\xff\x80", 1, 300)  # 9 bits: 511 >= 300
    counts = hyper_coding.prior_counts(np.array([4.0, 0.0, 0.0, -30.0]))
    assert counts.min() >= 1 and abs(int(counts.sum()) - 2**16) < 2**14
    coded = hyper_coding.encode_with_prior(np.zeros(40, np.int32), counts)
    assert len(coded) < 40 * 2 / 8  # under 2 bits each for the likely code
    np.testing.assert_array_equal(hyper_coding.decode_with_prior(coded, counts, 40), 0)


def test_four_part_masks_cover_each_element_once():
    m = four_part_masks(5, 6, 8)
    np.testing.assert_array_equal(m.sum(0), 1.0)
    # each step codes every 2x2 phase once per channel group, each group once per phase
    assert m[0, 0, 0, 0] == 1 and m[0, 0, 1, 2] == 1 and m[1, 1, 1, 0] == 1
    with pytest.raises(ValueError):
        four_part_masks(4, 4, 6)


# --- codec -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, mode", [((64, 64), "fixed"), ((37, 90), "entropy")])
def test_round_trip_is_bit_exact(exports, shape, mode):
    enc = codec(exports[1], rate_index=2, hyper_coding=mode)
    result = enc.encode(image(*shape))
    decoded = registry.decode_bytes(result.data, checkpoint=str(exports[1]))
    assert decoded.shape == (*shape, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, result.reconstruction)
    assert result.info["bpp"] == pytest.approx(8 * len(result.data) / (shape[0] * shape[1]))


def test_rate_is_monotone_in_the_rate_index(exports):
    sizes = [len(codec(exports[1], rate_index=r).encode(image(64, 128, 3)).data)
             for r in range(4)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1], sizes
    fixed = codec(exports[1], hyper_coding="fixed").encode(image(64, 128, 3)).info["bpp_z"]
    # 2 positions of log2(32) = 5 bits: one byte after padding
    assert fixed == pytest.approx(8 * 2 / (64 * 128))


def test_corrupted_and_truncated_files_raise(exports):
    enc = codec(exports[1])
    data = enc.encode(image(64, 64, 1)).data
    for bad in (data[:-5], data[:20], data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0x55])
                + data[len(data) // 2 + 1:]):
        with pytest.raises(BitstreamError):
            enc.decode(bad)
    params, model_config, _ = load_inference(exports[1])
    params["latent"]["params"]["q_dec"] = params["latent"]["params"]["q_dec"] + 0.01
    with pytest.raises(BitstreamError, match="encoded with model weights"):
        GLCCodec.from_params(params, model_config).decode(data)


def test_overflowing_model_still_codes_bit_exactly(exports):
    """An under-trained model whose blocks overflow (here: a huge rate vector) gets clipped,
    finite coder parameters on both sides instead of failing."""
    params, model_config, _ = load_inference(exports[1])
    params["latent"]["params"]["q_enc"] = params["latent"]["params"]["q_enc"] * 1e12
    codec = GLCCodec.from_params(params, model_config, rate_index=1)
    result = codec.encode(image(64, 64, 4))
    np.testing.assert_array_equal(codec.decode(result.data), result.reconstruction)


def test_missing_model_is_named(exports):
    data = codec(exports[1]).encode(image(64, 64, 2)).data
    with pytest.raises(BitstreamError, match=f"glc file decodes only.*{file_weights_hash(data).hex()}"):
        registry.decode_bytes(data)
    with pytest.raises(CheckpointError, match="needs a trained model"):
        registry.make(config_dict.ConfigDict({"codec": "glc"}))
    with pytest.raises(CheckpointError, match="only the stage-I autoencoder"):
        codec(exports[0])
    with pytest.raises(ValueError, match="rate_index"):
        codec(exports[1], rate_index=4)
    with pytest.raises(ValueError, match="hyper_coding"):
        codec(exports[1], hyper_coding="huffman")


def test_bad_config_values_are_one_line_errors():
    with pytest.raises(GLCConfigError, match="stage must be"):
        make_task(tiny_config(stage="both"))
    with pytest.raises(GLCConfigError, match="autoencoder_checkpoint"):
        make_task(tiny_config(stage="transform"))
    with pytest.raises(GLCConfigError, match="init_checkpoint"):
        make_task(tiny_config(stage="joint"))
    with pytest.raises(GLCConfigError, match="crop"):
        make_task(tiny_config(crop=96))
    with pytest.raises(CheckpointError):
        make_task(tiny_config(stage="transform", autoencoder_checkpoint="/nonexistent"))


# --- factorized hyper module (ablation) ------------------------------------------------------

def with_hyper_mode(data: bytes, mode: int) -> bytes:
    """``data`` re-written with the header's hyper-coding value set to ``mode``."""
    container = read_image_container(data, "glc")
    reader = ByteReader(container.section(SectionType.HEADER), "glc header")
    header = ByteWriter().raw(reader.raw(8)).uvarint(reader.uvarint()).uvarint(mode).getvalue()
    sections = [(SectionType.HEADER, header)] + [
        (t, container.section(t)) for t in (SectionType.HYPER, SectionType.LATENTS)]
    return write_container("glc", container.height, container.width, 3, 8, sections)


def test_factorized_export_holds_tables(exports, factorized_exports):
    assert load_inference(exports[1])[1]["latent"]["hyper_module"] == "categorical"
    params, model_config, _ = load_inference(factorized_exports[1])
    assert model_config["latent"]["hyper_module"] == "factorized"
    assert model_config["hyper_coding"] == "factorized"
    assert "hyper_counts" not in params and "hyper_logits" not in params["latent"]["params"]
    assert "hyper_vq" not in params["latent"]["params"]
    tables = params["z_tables"]
    assert tables["counts"].shape[0] == 8 and tables["offsets"].shape == (8,)  # Dz = 8
    assert tables["offsets"].dtype == np.int64 and np.all(tables["counts"] >= 1)


@pytest.mark.parametrize("shape", [(64, 64), (37, 90)])
def test_factorized_round_trip_is_bit_exact(factorized_exports, shape):
    enc = codec(factorized_exports[1], rate_index=1)
    result = enc.encode(image(*shape, seed=5))
    decoded = registry.decode_bytes(result.data, checkpoint=str(factorized_exports[1]))
    np.testing.assert_array_equal(decoded, result.reconstruction)
    container = read_image_container(result.data, "glc")
    header = ByteReader(container.section(SectionType.HEADER), "glc header")
    header.raw(8)
    assert header.uvarint() == 1 and header.uvarint() == hyper_coding.FACTORIZED
    assert len(container.section(SectionType.HYPER)) > 0 and result.info["bpp_z"] > 0


def test_factorized_rate_grows_with_the_rate_index(factorized_exports):
    infos = [codec(factorized_exports[1], rate_index=r).encode(image(64, 128, 3)).info
             for r in range(4)]
    bpp = [i["bpp"] for i in infos]
    assert all(b > 0 for b in bpp) and bpp[0] < bpp[-1], bpp
    assert [i["bpp_y"] for i in infos] == sorted(i["bpp_y"] for i in infos)


def test_hyper_module_mismatches_raise(exports, factorized_exports):
    with pytest.raises(ValueError, match="categorical hyper module"):
        codec(exports[1], hyper_coding="factorized")
    for mode in ("fixed", "entropy"):
        with pytest.raises(ValueError, match="factorized hyper module"):
            codec(factorized_exports[1], hyper_coding=mode)
    fact = codec(factorized_exports[1])
    data = fact.encode(image(64, 64, 6)).data
    for mode in (hyper_coding.FIXED, hyper_coding.ENTROPY):
        with pytest.raises(BitstreamError, match="does not fit"):
            fact.decode(with_hyper_mode(data, mode))
    cat = codec(exports[1])
    with pytest.raises(BitstreamError, match="does not fit"):
        cat.decode(with_hyper_mode(cat.encode(image(64, 64, 6)).data, hyper_coding.FACTORIZED))
    with pytest.raises(BitstreamError):
        fact.decode(with_hyper_mode(data, 3))  # no such mode


def test_factorized_bad_files_raise(factorized_exports):
    enc = codec(factorized_exports[1])
    data = enc.encode(image(64, 64, 7)).data
    for bad in (data[:-5], data[:20], data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0x55])
                + data[len(data) // 2 + 1:]):
        with pytest.raises(BitstreamError):
            enc.decode(bad)
    container = read_image_container(data, "glc")
    hyper = container.section(SectionType.HYPER)
    with pytest.raises(BitstreamError):  # a hyper stream of no whole 32-bit words
        enc.decode(write_container("glc", 64, 64, 3, 8, [
            (SectionType.HEADER, container.section(SectionType.HEADER)),
            (SectionType.HYPER, hyper[:-1]),
            (SectionType.LATENTS, container.section(SectionType.LATENTS))]))


def test_factorized_training_step(factorized_exports):
    from nlc_jax.train.loop import build_trainer

    c = tiny_config(stage="transform", autoencoder_checkpoint=str(factorized_exports[0]))
    c.latent.hyper_module = "factorized"
    trainer = build_trainer(c)
    batch = trainer.put_batch(image(64, 128, 8).reshape(2, 64, 64, 3))
    state, metrics = trainer.step(trainer.state, batch)
    assert np.isfinite(float(metrics["loss"])) and float(metrics["bpp_z"]) > 0
    assert "hyper_vq_loss" not in metrics and "state_stats" not in metrics
    assert int(state["step"]) == 1
    assert trainer.task.update_state(state["params"], None, jax.random.key(0)) is state["params"]
    export = trainer.task.export(state["params"])
    assert set(export) == {"autoencoder", "latent", "z_tables"}


def test_categorical_prior_follows_the_index_histogram(exports):
    """The hyper indices' categorical prior gets no gradient; each training step moves it
    towards the batch's index histogram by ``1 − latent.hyper_prior_decay``."""
    c = tiny_config(stage="transform", autoencoder_checkpoint=str(exports[0]))
    task = make_task(c)
    params = task.init(jax.random.key(0), 64)
    images = jnp.asarray(image(64, 128, 3).reshape(2, 64, 64, 3), jnp.float32) / 255.0
    grads, metrics = jax.grad(lambda p: task.loss(p, images, jax.random.key(1)),
                              has_aux=True)(params)
    assert not np.any(np.asarray(grads["latent"]["params"]["hyper_logits"]))
    counts = np.asarray(metrics["state_stats"]["counts"])
    new = task.update_state(params, metrics["state_stats"], jax.random.key(2))
    probs = np.asarray(jax.nn.softmax(new["latent"]["params"]["hyper_logits"]))
    k = counts.size
    d = c.latent.hyper_prior_decay
    np.testing.assert_allclose(probs, d / k + (1 - d) * counts / counts.sum(), rtol=1e-5)
    assert np.argmax(probs) == np.argmax(counts)


def test_hyper_module_config_errors():
    with pytest.raises(GLCConfigError, match="latent.hyper_module must be one of"):
        c = tiny_config()
        c.latent.hyper_module = "gaussian"
        make_task(c)
    with pytest.raises(GLCConfigError, match="hyper_module='factorized'"):
        c = tiny_config()
        c.latent.hyper_coding = "factorized"
        make_task(c)
