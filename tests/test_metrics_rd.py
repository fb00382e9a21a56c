"""``nlc_jax.metrics.rd.published_curves`` (MS-ILLM's CSV layout) and
``nlc_jax.metrics.classic_codecs.ladder`` (the JPEG / WebP anchors of the RD benchmarks)."""

from pathlib import Path

import numpy as np
import pytest

from nlc_jax.metrics.classic_codecs import LOWEST_QUALITY, encode_decode, ladder
from nlc_jax.metrics.rd import RDFileError, published_curves

MSILLM = Path(__file__).resolve().parents[2] / "shared" / "reference" / "msillm-results.csv"


def test_published_curves_keep_one_dataset_sorted_by_rate(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("model,dataset,bpp,fid,lpips,ms_ssim,psnr\n"
                   "A,kodak,0.3,,0.05,0.96,30.0\n"
                   "A,kodak,0.1,,0.12,0.90,26.0\n"
                   "A,clic2020,0.2,3.0,0.07,0.95,29.0\n"
                   "B,kodak,0.2,,,,28.0\n")
    curves = {c.codec: c for c in published_curves(csv, "kodak")}
    assert set(curves) == {"A", "B"}
    a = curves["A"]
    np.testing.assert_allclose(a.bpp, [0.1, 0.3])
    np.testing.assert_allclose(a.values["psnr_db"], [26.0, 30.0])
    np.testing.assert_allclose(a.values["lpips"], [0.12, 0.05])
    np.testing.assert_allclose(a.values["ms_ssim_db"], -10 * np.log10(1 - np.array([0.9, 0.96])))
    assert curves["B"].has("psnr_db") and not curves["B"].has("lpips")


def test_published_curves_bad_files_raise_one_error(tmp_path):
    with pytest.raises(RDFileError, match="cannot read"):
        published_curves(tmp_path / "missing.csv", "kodak")
    (tmp_path / "cols.csv").write_text("name,bpp\nA,0.1\n")
    with pytest.raises(RDFileError, match="model, dataset, bpp"):
        published_curves(tmp_path / "cols.csv", "kodak")
    (tmp_path / "num.csv").write_text("model,dataset,bpp,psnr\nA,kodak,x,30\n")
    with pytest.raises(RDFileError, match="line 2"):
        published_curves(tmp_path / "num.csv", "kodak")


@pytest.mark.skipif(not MSILLM.exists(), reason="../shared is not here")
def test_msillm_kodak_curve_is_the_published_one():
    curves = {c.codec: c for c in published_curves(MSILLM, "kodak")}
    ms = curves["MS-ILLM"]
    assert len(ms.bpp) == 6 and np.all(np.diff(ms.bpp) > 0)
    assert ms.values["lpips"][0] == pytest.approx(0.15762, abs=1e-5)
    assert ms.values["psnr_db"][-1] == pytest.approx(33.2117, abs=1e-4)


def test_ladder_codes_each_image_at_each_quality():
    rng = np.random.default_rng(0)
    images = {"a": rng.integers(0, 256, (32, 48, 3), np.uint8),
              "b": np.full((16, 16, 3), 128, np.uint8)}
    out = list(ladder(images, "webp", (LOWEST_QUALITY["webp"], 90)))
    assert [(n, q) for n, q, _, _ in out] == [("a", 0), ("a", 90), ("b", 0), ("b", 90)]
    for name, q, decoded, bpp in out:
        ref, size = encode_decode(images[name], "webp", q)
        np.testing.assert_array_equal(decoded, ref)
        assert bpp == pytest.approx(8.0 * size / images[name][..., 0].size)
    assert out[0][3] < out[1][3]  # the noise image costs more at higher quality
