"""MS-SSIM and LPIPS against reference values computed by the reference implementations.

The numbers in tests/fixtures/metrics/reference.json come from ``pytorch_msssim`` and the
``lpips`` package (float64), produced by tools/make_metric_fixtures.py.
"""

import numpy as np
import pytest
from metric_fixtures import REFERENCE, load_pair, record_id

from nlc_jax.metrics.inputs import MetricInputError
from nlc_jax.metrics.ms_ssim import MIN_SIDE, ms_ssim, ms_ssim_db

PAIRS = [(load_pair(r), r) for r in REFERENCE["pairs"]]
IDS = [record_id(r) for r in REFERENCE["pairs"]]


@pytest.mark.parametrize("pair,record", PAIRS, ids=IDS)
def test_ms_ssim_matches_pytorch_msssim(pair, record):
    a, b = pair
    assert abs(float(ms_ssim(a, b)) - record["ms_ssim"]) < 1e-4


def test_ms_ssim_batched_and_float_inputs_agree():
    (a0, b0), _ = PAIRS[0]
    (a1, b1), _ = PAIRS[1]
    batch = np.asarray(ms_ssim(np.stack([a0, a1]), np.stack([b0, b1])))
    expected = [PAIRS[0][1]["ms_ssim"], PAIRS[1][1]["ms_ssim"]]
    np.testing.assert_allclose(batch, expected, atol=1e-4)
    as_float = float(ms_ssim(a0 / 255.0, b0 / 255.0, max_value=1.0))
    assert abs(as_float - expected[0]) < 1e-4


def test_ms_ssim_identity_and_db():
    (a, _), _ = PAIRS[0]
    assert float(ms_ssim(a, a)) == pytest.approx(1.0, abs=1e-6)
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    assert ms_ssim_db(1.0) == np.inf


def test_ms_ssim_small_or_mismatched_images_are_refused():
    img = np.zeros((MIN_SIDE - 1, 300, 3), np.uint8)
    with pytest.raises(MetricInputError, match="161 px"):
        ms_ssim(img, img)
    ok = np.zeros((MIN_SIDE, MIN_SIDE, 3), np.uint8)
    assert float(ms_ssim(ok, ok)) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(MetricInputError, match="shapes differ"):
        ms_ssim(ok, ok[:, :-1])
