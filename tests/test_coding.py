"""Range coding: round trips, escapes, determinism under perturbed parameters, exact rates."""

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlc_jax.bitstream import BitstreamError
from nlc_jax.entropy import coding


def _laplace_stream(n, seed=0, loc_range=8.0, scale_range=(0.05, 40.0)):
    rng = np.random.default_rng(seed)
    loc = rng.uniform(-loc_range, loc_range, n)
    scale = np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]), n))
    symbols = np.round(loc + rng.laplace(0.0, 1.0, n) * scale).astype(np.int32)
    return symbols, loc, scale


@pytest.mark.parametrize("family", coding.CODED_FAMILIES)
def test_round_trip_with_escapes(family):
    symbols, loc, scale = _laplace_stream(5000)
    # Far outside every coded support, including the int32 extremes.
    symbols[:6] = [10**6, -10**6, 2**31 - 1, -2**31, 15, -15]
    loc[:6] = 0.0
    scale[:6] = 0.01
    encoder = coding.ConditionalEncoder(family)
    encoder.encode(symbols.reshape(50, 100), loc.reshape(50, 100), scale.reshape(50, 100))
    data = encoder.finish()
    decoded = coding.ConditionalDecoder(data, family).decode(loc.reshape(50, 100),
                                                             scale.reshape(50, 100))
    assert decoded.dtype == np.int32 and decoded.shape == (50, 100)
    np.testing.assert_array_equal(decoded.reshape(-1), symbols)


def test_chunked_fifo_mixed_models():
    """An autoregressive decoder reads chunk by chunk, in encoding order, mixing models."""
    rng = np.random.default_rng(1)
    chunks = [_laplace_stream(n, seed=n) for n in (1, 17, 300)]
    probs = rng.dirichlet(np.ones(5), size=40)
    cats = rng.integers(0, 5, size=40)
    encoder = coding.ConditionalEncoder("gaussian")
    for sym, loc, scale in chunks:
        encoder.encode(sym, loc, scale)
        encoder.encode_categorical(cats, probs)
    decoder = coding.ConditionalDecoder(encoder.finish(), "gaussian")
    for sym, loc, scale in chunks:
        np.testing.assert_array_equal(decoder.decode(loc, scale), sym)
        np.testing.assert_array_equal(decoder.decode_categorical(probs), cats)


def test_empty_stream_and_scalar_broadcast():
    encoder = coding.ConditionalEncoder()
    encoder.encode(np.zeros((0,), np.int32), np.zeros(0), np.ones(0))
    encoder.encode(np.array([3, -2, 0]), 0.0, 2.0)  # scalar parameters broadcast
    data = encoder.finish()
    np.testing.assert_array_equal(coding.ConditionalDecoder(data).decode(np.zeros(3), 2.0),
                                  [3, -2, 0])
    assert coding.ConditionalEncoder().finish() == b""


@pytest.mark.parametrize("family", coding.CODED_FAMILIES)
def test_decode_bit_exact_under_perturbed_parameters(family):
    """Encoder and decoder compute parameters differently (float32 vs float64, 1e-6 relative
    perturbation): after snapping the coder sees identical numbers and decoding is exact.

    Snapping makes a mismatch a boundary event (about 1 parameter in 10^4 here, see
    test_snapping_cells_rarely_flip); this stream has none, which is checked, not assumed.
    """
    symbols, loc, scale = _laplace_stream(4000, seed=4, loc_range=4.0)
    enc = coding.ConditionalEncoder(family)
    enc.encode(symbols, loc.astype(np.float32), scale.astype(np.float32))
    rng = np.random.default_rng(4)
    loc_dec = loc * (1 + 1e-6 * rng.choice([-1.0, 1.0], loc.shape))
    scale_dec = scale * (1 + 1e-6 * rng.choice([-1.0, 1.0], scale.shape))
    snapped_enc = coding.snap_params(family, loc.astype(np.float32), scale.astype(np.float32))
    snapped_dec = coding.snap_params(family, loc_dec, scale_dec)
    for a, b in zip(snapped_enc, snapped_dec, strict=True):
        np.testing.assert_array_equal(a, b)
    decoded = coding.ConditionalDecoder(enc.finish(), family).decode(loc_dec, scale_dec)
    np.testing.assert_array_equal(decoded, symbols)
    # Without snapping, the same perturbation would change what the coder is fed.
    assert not np.array_equal(loc_dec, loc.astype(np.float32).astype(np.float64))


def test_snapping_cells_rarely_flip():
    """The chance a 1e-6 relative perturbation crosses a snapping boundary is ~ size/step."""
    rng = np.random.default_rng(5)
    loc = rng.uniform(-4, 4, 200_000)
    scale = np.exp(rng.uniform(-3, 3, 200_000))
    a = coding.snap_params("laplace", loc, scale)
    b = coding.snap_params("laplace", loc * (1 + 1e-6), scale * (1 + 1e-6))
    loc_flips = np.mean(a[0] != b[0])
    scale_flips = np.mean(a[1] != b[1])
    # bounds: E|loc| * 1e-6 / MEAN_STEP and log2(1 + 1e-6) * steps per octave, with margin 3x
    assert loc_flips <= 3 * 2.0 * 1e-6 / coding.MEAN_STEP
    assert scale_flips <= 3 * 1.5e-6 * coding.SCALE_STEPS_PER_OCTAVE
    assert set(np.unique(a[1])) <= set(coding.SCALE_TABLE)
    assert np.all(a[0] * 64 == np.round(a[0] * 64))


def test_scale_table_is_pinned():
    """The coder's scale table must be identical on every machine (checksum of its bytes)."""
    digest = hashlib.sha256(coding.SCALE_TABLE.astype("<f8").tobytes()).hexdigest()
    assert digest == SCALE_TABLE_SHA256
    assert coding.SCALE_TABLE[0] == 2.0 ** -6 and coding.SCALE_TABLE[-1] == 2.0 ** 14


def test_golden_bitstream():
    """A fixed stream must code to fixed bytes: guards constriction's float64 quantization
    (exp/erf inside the library) and our snapping against platform or version drift."""
    symbols, loc, scale = _laplace_stream(2000, seed=7)
    out = []
    for family in coding.CODED_FAMILIES:
        enc = coding.ConditionalEncoder(family)
        enc.encode(symbols, loc, scale)
        out.append(enc.finish())
    probs = np.random.default_rng(8).dirichlet(np.ones(6), 500)
    out.append(coding.encode_categorical(np.arange(500) % 6, probs))
    digest = hashlib.sha256(b"".join(out)).hexdigest()
    assert digest == GOLDEN_SHA256


@pytest.mark.parametrize("family", coding.CODED_FAMILIES)
def test_exact_bits_matches_coded_size(family):
    symbols, loc, scale = _laplace_stream(20_000, seed=9)
    symbols[:3] = [500, -700, 2**20]  # escapes are part of the exact rate too
    enc = coding.ConditionalEncoder(family)
    enc.encode(symbols, loc, scale)
    coded = 8 * len(enc.finish())
    exact = coding.exact_bits(symbols, loc, scale, family)
    assert exact <= coded <= exact + 96


def test_categorical_round_trip_and_exact_bits():
    rng = np.random.default_rng(10)
    probs = rng.dirichlet(np.full(12, 0.3), size=(30, 40))
    symbols = np.array([[rng.choice(12, p=p) for p in row] for row in probs])
    data = coding.encode_categorical(symbols, probs)
    np.testing.assert_array_equal(coding.decode_categorical(data, probs), symbols)
    exact = coding.categorical_exact_bits(symbols, probs)
    assert exact <= 8 * len(data) <= exact + 96


def test_tables_round_trip_with_escapes():
    rng = np.random.default_rng(11)
    counts = coding.snap_probabilities(rng.dirichlet(np.ones(9), size=3))
    offsets = np.array([-4, 0, 10])
    index = rng.integers(0, 3, 1000)
    symbols = offsets[index] + rng.integers(-3, 12, 1000)
    symbols[:2] = [10**7, -10**7]
    enc = coding.ConditionalEncoder()
    enc.encode_tables(symbols, index, counts, offsets)
    decoded = coding.ConditionalDecoder(enc.finish()).decode_tables(index, counts, offsets)
    np.testing.assert_array_equal(decoded, symbols)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="cannot be range coded"):
        coding.ConditionalEncoder("logistic")
    with pytest.raises(ValueError, match="NaN"):
        coding.ConditionalEncoder().encode(np.zeros(2, np.int32), np.array([0, np.nan]), 1.0)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        coding.encode_categorical(np.array([3]), np.ones((1, 3)))
    with pytest.raises(BitstreamError, match="32-bit words"):
        coding.ConditionalDecoder(b"abc")


def test_snap_probabilities():
    counts = coding.snap_probabilities(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    assert counts.dtype == np.float32 and np.all(counts >= 1)
    assert counts[0, 1] == coding.COUNT_TOTAL
    np.testing.assert_array_equal(counts[1], counts[1, 0])  # all-zero row → uniform


def test_snap_probabilities_power_of_two_rule():
    """Counts are ``max(rint(p · 2^(16 - e)), 1)``, ``e`` the row total's power-of-two class:
    invariant under power-of-two scaling of a row, rows of any class mix in one array, and
    every row's counts sum to about 2^16."""
    rng = np.random.default_rng(12)
    probs = rng.dirichlet(np.full(16, 0.5), size=200).astype(np.float32)
    counts = coding.snap_probabilities(probs)
    np.testing.assert_array_equal(counts, np.maximum(np.rint(probs * 65536.0), 1.0))
    exponents = rng.integers(-30, 30, size=200)
    scaled = np.ldexp(probs, exponents[:, None]).astype(np.float32)  # mixed classes
    np.testing.assert_array_equal(coding.snap_probabilities(scaled), counts)
    # Class 0 is totals in [2^-0.5, 2^0.5): 0.75 and 1.35 are class 0, 1.5 is class 1.
    row = np.array([0.25, 0.5, 0.0], np.float32)
    for factor, e in ((1.0, 0), (1.8, 0), (2.0, 1)):
        np.testing.assert_array_equal(coding.snap_probabilities(row * factor),
                                      np.maximum(np.rint(row * factor * 2.0 ** (16 - e)), 1))
    weights = rng.uniform(0, 1e3, size=(50, 7))  # unnormalized: totals in many classes
    sums = coding.snap_probabilities(weights).sum(axis=1)
    assert np.all(sums >= 2 ** 15.5 - 7) and np.all(sums <= 2 ** 16.5 + 7)


def test_categorical_blocks_code_like_one_call():
    """Counts are made and coded in cache-sized blocks; the bytes equal one constriction call
    on the full count array, and decoding block by block restores every symbol."""
    import constriction

    rng = np.random.default_rng(13)
    n = 3 * (coding._SNAP_CHUNK_ELEMENTS // 16) + 5
    probs = rng.dirichlet(np.full(16, 0.5), size=n).astype(np.float32)
    symbols = rng.integers(0, 16, size=n)
    data = coding.encode_categorical(symbols, probs)
    whole = constriction.stream.queue.RangeEncoder()
    whole.encode(symbols.astype(np.int32), constriction.stream.model.Categorical(perfect=False),
                 coding.snap_probabilities(probs))
    assert data == whole.get_compressed().astype("<u4").tobytes()
    np.testing.assert_array_equal(coding.decode_categorical(data, probs), symbols)


SCALE_TABLE_SHA256 = "32bfd40737655d1f01e815cc48971c0b91a419e5cda14890fafada0d22a14432"
GOLDEN_SHA256 = "7f56a12a8c117f0aa7c5db534cec5ebbcfef71496d1941d06b45e10e0df0cda6"


def test_table_values_snap_to_themselves():
    """Callers that compute table indices in fixed point pass SCALE_TABLE[idx] / multiples of
    the mean step: snapping must leave them unchanged."""
    idx = coding.scale_index(coding.SCALE_TABLE)
    np.testing.assert_array_equal(idx, np.arange(len(coding.SCALE_TABLE)))
    grid = np.arange(-5000, 5000) * coding.MEAN_STEP
    np.testing.assert_array_equal(coding.snap_loc(grid), grid)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64).map(lambda b: b[:len(b) // 4 * 4]), st.sampled_from([0.01, 3.0, 5e3]))
def test_fuzz_decoder_on_garbage(data, scale):
    """Garbage payloads decode to some symbols or raise BitstreamError, never anything else."""
    decoder = coding.ConditionalDecoder(data, "laplace")
    try:
        out = decoder.decode(np.zeros(50), np.full(50, scale))
        assert out.shape == (50,) and out.dtype == np.int32
        decoder.decode_categorical(np.full((20, 4), 0.25))
        decoder.decode_tables(np.zeros(10, np.int64), coding.snap_probabilities(np.ones((1, 3))),
                              np.zeros(1, np.int64))
    except BitstreamError:
        pass


def test_scale_index_codes_like_table_scales():
    """Coding with integer scale-table indices (an integer entropy model's output) writes the
    same stream as coding with the table's float scales, and decodes back; indices outside the
    table are refused."""
    rng = np.random.default_rng(3)
    n = 5000
    index = rng.integers(0, len(coding.SCALE_TABLE), n)
    loc = rng.normal(0, 20, n)
    symbols = np.rint(loc + rng.laplace(0, 1, n) * coding.SCALE_TABLE[index]).astype(np.int64)
    by_scale, by_index = coding.ConditionalEncoder(), coding.ConditionalEncoder()
    by_scale.encode(symbols, loc, coding.SCALE_TABLE[index])
    by_index.encode(symbols, loc, scale_index=index)
    data = by_index.finish()
    assert data == by_scale.finish()
    out = coding.ConditionalDecoder(data).decode(loc, scale_index=index)
    np.testing.assert_array_equal(out, symbols)
    with pytest.raises(ValueError, match="scale index"):
        coding.ConditionalEncoder().encode(symbols[:3], loc[:3], scale_index=[0, 1, 999])
