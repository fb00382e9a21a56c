"""Bjøntegaard deltas (pchip over the overlapping interval)."""

import json
from pathlib import Path

import numpy as np
import pytest

from nlc_jax.metrics.bd import BDError, bd_psnr, bd_quality, bd_rate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"
RATE = np.array([0.084, 0.219, 0.482, 0.759, 1.357])
PSNR = np.array([27.44, 30.86, 34.52, 37.25, 41.17])


def test_curve_against_itself_is_zero():
    assert bd_rate(RATE, PSNR, RATE, PSNR) == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr(RATE, PSNR, RATE, PSNR) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("factor", [0.9, 1.25])
def test_uniform_rate_scaling_gives_that_percentage(factor):
    assert bd_rate(RATE, PSNR, RATE * factor, PSNR) == pytest.approx((factor - 1) * 100, abs=1e-9)


def test_quality_shift_gives_bd_psnr_and_order_does_not_matter():
    assert bd_psnr(RATE, PSNR, RATE, PSNR + 0.5) == pytest.approx(0.5, abs=1e-12)
    perm = [3, 0, 4, 1, 2]
    assert bd_rate(RATE[perm], PSNR[perm], RATE * 0.9, PSNR) == pytest.approx(-10.0, abs=1e-9)


def test_worked_example_matches_the_jvet_ctc_spreadsheet_algorithm():
    # Test data of the FAU-LMS `bjontegaard` package README (x265 presets, kbps / dB). Expected
    # values computed with that package (v1.3.0, method="pchip"), whose pchip is a port of the
    # JCT-VC/JVET common-test-condition Excel sheet, stated there to agree with the sheet to 10
    # decimals; our implementation (scipy PchipInterpolator) is independent of it.
    ra = [9487.76, 4593.60, 2486.44, 1358.24]
    pa = [40.037, 38.615, 36.845, 34.851]
    rt = [9787.80, 4469.00, 2451.52, 1356.24]
    pt = [40.121, 38.651, 36.970, 34.987]
    assert bd_rate(ra, pa, rt, pt) == pytest.approx(-4.417485350589045, abs=1e-8)
    assert bd_psnr(ra, pa, rt, pt) == pytest.approx(0.11969278542479489, abs=1e-8)


def test_only_the_overlapping_interval_counts():
    # log-rate linear in PSNR (pchip reproduces lines exactly). The test curve is the anchor at
    # 0.9x the rate up to 45 dB, then bends away (a point at 50 dB far off the line). pchip's
    # bend only reaches the intervals next to 45 dB, beyond the anchor's 41 dB maximum, so
    # over the overlap the answer is exactly -10%; integrating past the overlap would not be.
    qa = np.array([28.0, 31.0, 34.0, 37.0, 41.0])
    qt = np.array([30.0, 33.0, 36.0, 39.0, 41.0, 45.0, 50.0])
    ra = np.exp(0.2 * qa - 7)
    rt = 0.9 * np.exp(0.2 * qt - 7)
    rt[-1] *= 3.0
    assert bd_rate(ra, qa, rt, qt) == pytest.approx(-10.0, abs=1e-9)
    assert bd_rate(ra, qa, rt[:-1], qt[:-1]) == pytest.approx(-10.0, abs=1e-9)


def test_lower_is_better_metric_works_for_bd_rate():
    lp = np.array([0.40, 0.25, 0.14, 0.09, 0.04])  # LPIPS falls as rate grows
    assert bd_rate(RATE, lp, RATE * 0.9, lp) == pytest.approx(-10.0, abs=1e-9)
    assert bd_quality(RATE, lp, RATE, lp - 0.01) == pytest.approx(-0.01, abs=1e-12)


def test_compressai_learned_codec_beats_jpeg_on_kodak():
    # Published CompressAI Kodak curves: mbt2018-mean is far better than JPEG (Pillow).
    path = SHARED / "compressai-kodak-jpeg.json"
    if not path.exists():
        pytest.skip("../shared/reference not available")
    jpeg = json.loads(path.read_text())["results"]
    mbt = json.loads((SHARED / "compressai-kodak-compressai-mbt2018-mean_mse_cpu.json"
                      ).read_text())["results"]
    rate = bd_rate(jpeg["bpp"], jpeg["psnr-rgb"], mbt["bpp"], mbt["psnr-rgb"])
    back = bd_rate(mbt["bpp"], mbt["psnr-rgb"], jpeg["bpp"], jpeg["psnr-rgb"])
    assert -80 < rate < -40
    # Swapping anchor and test inverts the average log-rate ratio exactly.
    assert (1 + rate / 100) * (1 + back / 100) == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("args,match", [
    (([1, 2], [30, 31], [1], [30]), "at least 2"),
    (([1, -2], [30, 31], [1, 2], [30, 31]), "positive"),
    (([1, 2], [30, 31], [1, 2, 3], [30, 31]), "3 rates but 2"),
    (([1, 2], [30, 31], [1, 2], [40, 41]), "do not overlap"),
    (([1, 2, 3], [30, 30, 31], [1, 2], [30, 31]), "repeated"),
    (([1, 2], [30, float("nan")], [1, 2], [30, 31]), "finite"),
])
def test_bad_curves_raise_clear_errors(args, match):
    with pytest.raises(BDError, match=match):
        bd_rate(*args)
