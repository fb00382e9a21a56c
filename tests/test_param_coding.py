"""Network weights in the bitstream (``nlc_jax.entropy.param_coding``): both coding schemes round
trip exactly, the counted bits are the written bits, range coding beats Exp-Golomb, and corrupt
data raises the library's error."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from nlc_jax.bitstream.errors import BitstreamError
from nlc_jax.entropy import param_coding as pc


def _tree(seed: int = 0) -> dict:
    """Float weights shaped like a small decoder: layers of different spreads, an empty leaf,
    a scalar, and one large outlier (an escape code in the range coder)."""
    rng = np.random.default_rng(seed)
    return {
        "arm": {"l0": {"w": rng.laplace(0, 0.05, (20, 20)).astype(np.float32),
                       "b": rng.normal(0, 0.01, (20,)).astype(np.float32)},
                "l1": {"w": rng.normal(0, 0.3, (20, 2)).astype(np.float32),
                       "b": np.zeros((2,), np.float32)}},
        "synthesis": {"l0": {"w": np.concatenate([rng.standard_t(3, 335) * 0.1, [40.0]])
                             .astype(np.float32).reshape(7, 48),
                             "b": np.zeros((0,), np.float32)},
                      "l1": {"w": rng.normal(0, 0.02, (3, 3, 8, 3)).astype(np.float32),
                             "b": np.float32(0.25)}},
    }


EXPS = {"arm/weight": 8, "arm/bias": 10, "synthesis/weight": 7, "synthesis/bias": 6}


def _steps(scheme: str) -> dict[str, int]:
    """:data:`EXPS` named by ``scheme``'s groups (per layer for range coding)."""
    return {g: EXPS[f"{g.split('/')[0]}/{g.split('/')[-1]}"] for g in pc.groups(_tree(), scheme)}


@pytest.mark.parametrize("scheme", pc.SCHEMES)
def test_round_trip_is_exact(scheme):
    q = pc.quantize(_tree(), _steps(scheme))
    data = pc.encode_params(q, _steps(scheme), scheme)
    out, exps = pc.decode_params(data, _tree(1), scheme)
    assert exps == _steps(scheme)
    flat_q = [np.asarray(v) for v in jax.tree_util.tree_leaves(q)]
    flat_out = [np.asarray(v) for v in jax.tree_util.tree_leaves(out)]
    assert [v.shape for v in flat_q] == [v.shape for v in flat_out]
    for a, b in zip(flat_q, flat_out, strict=True):
        np.testing.assert_array_equal(a, b)
    assert max(int(np.abs(v).max(initial=0)) for v in flat_q) == 40 * 2 ** 7  # the outlier


@pytest.mark.parametrize("scheme", pc.SCHEMES)
def test_counted_bits_are_the_written_bits(scheme):
    q = pc.quantize(_tree(), _steps(scheme))
    counted = sum(pc.group_bits(q, scheme).values())
    written = 8 * len(pc.encode_params(q, _steps(scheme), scheme))
    # Exp-Golomb: byte padding only; range coding: the coder's final words (≤ 64 bits)
    assert counted <= written <= counted + (8 if scheme == pc.EXP_GOLOMB else 72), \
        (counted, written)


def test_range_coding_spends_fewer_bits_than_exp_golomb():
    for seed in range(3):
        q = pc.quantize(_tree(seed), EXPS)  # the same integers, coded both ways
        eg = len(pc.encode_params(q, EXPS, pc.EXP_GOLOMB))
        rc = len(pc.encode_params(q, _steps(pc.RANGE), pc.RANGE))
        assert rc < 0.95 * eg, (seed, rc, eg)


def test_groups_are_layers_under_range_coding_and_modules_under_exp_golomb():
    tree = _tree()
    assert pc.groups(tree, pc.EXP_GOLOMB) == sorted(EXPS)
    assert pc.groups(tree, pc.RANGE) == [
        "arm/l0/bias", "arm/l0/weight", "arm/l1/bias", "arm/l1/weight", "synthesis/l0/bias",
        "synthesis/l0/weight", "synthesis/l1/bias", "synthesis/l1/weight"]
    assert pc.groups({"up": {"smooth": np.zeros(3)}}) == ["up/smooth/weight"]
    # steps named per layer or per module are found either way
    per_layer = {g: 5 for g in pc.groups(tree, pc.RANGE)}
    assert pc.step_of(per_layer, "arm", "l1", "bias") == 5
    assert pc.step_of(EXPS, "arm", "l1", "bias") == EXPS["arm/bias"]
    np.testing.assert_array_equal(pc.quantize(tree, per_layer)["arm"]["l1"]["w"],
                                  np.rint(tree["arm"]["l1"]["w"] * 32))


def test_best_model_picks_the_family_and_scale_that_fit():
    rng = np.random.default_rng(3)
    gauss = np.rint(rng.normal(0, 20, 4000)).astype(np.int64)
    laplace = np.rint(rng.laplace(0, 20, 4000)).astype(np.int64)
    m_gauss, bits_gauss = pc.best_model(gauss)
    m_laplace, _ = pc.best_model(laplace)
    assert m_gauss >> 7 == 1 and m_laplace >> 7 == 0
    # the chosen model is at least as good as every other scale of its family
    for m in range(pc.N_MODEL_SCALES):
        assert bits_gauss <= pc.model_bits(gauss, 128 + m).sum() + 1e-6
    assert pc.best_model(np.zeros(0, np.int64)) == (0, 0.0)


@pytest.mark.parametrize("cut", [0, 3, 5, 9])
def test_truncated_range_coded_weights_raise(cut):
    q = pc.quantize(_tree(), _steps(pc.RANGE))
    data = pc.encode_params(q, _steps(pc.RANGE), pc.RANGE)
    with pytest.raises(BitstreamError):
        pc.decode_params(data[:cut], _tree(), pc.RANGE)


def test_invalid_model_byte_raises():
    q = pc.quantize(_tree(), _steps(pc.RANGE))
    data = bytearray(pc.encode_params(q, _steps(pc.RANGE), pc.RANGE))
    data[1] = 126  # the first group's model: a scale index past the table
    with pytest.raises(BitstreamError, match="invalid weight model"):
        pc.decode_params(bytes(data), _tree(), pc.RANGE)


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown weight coding scheme"):
        pc.group_bits({}, "huffman")
