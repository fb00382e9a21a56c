"""``nlc_jax.metrics.rd_report``: the shared parts of the one-model-against-anchors benchmarks
(``benchmarks/rvdiff_rd.py``, ``benchmarks/glc_rd.py``)."""

import json

import numpy as np
import pytest

from nlc_jax.metrics.rd import write_tsv
from nlc_jax.metrics.rd_report import (
    ReportArgumentError,
    bd_against_all,
    classic_records,
    compared_records,
    curves_of,
    image_quality,
    parse_classic,
    plot_curves,
    select_sources,
)


def test_parse_classic_and_its_errors():
    assert parse_classic("jpeg:1,5;webp:0") == {"jpeg": [1, 5], "webp": [0]}
    assert parse_classic("") == {}
    with pytest.raises(ReportArgumentError, match="codec:q"):
        parse_classic("png:3")
    with pytest.raises(ReportArgumentError, match="codec:q"):
        parse_classic("jpeg")


def test_image_quality_skips_ms_ssim_on_small_images_and_lpips_without_weights():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (32, 32, 3), np.uint8)
    q = image_quality(small, small // 2, None)
    assert set(q) == {"psnr_db"} and 0 < q["psnr_db"] < 20
    big = rng.integers(0, 256, (176, 176, 3), np.uint8)
    q = image_quality(big, big, None)
    assert q["psnr_db"] == np.inf and q["ms_ssim"] == pytest.approx(1.0)


def _records(codec, bpps, psnrs, lpipses, names=("a", "b")):
    return [{"codec": codec, "point": f"p{i}", "image": n, "bpp": b, "psnr_db": p, "lpips": lp}
            for i, (b, p, lp) in enumerate(zip(bpps, psnrs, lpipses, strict=True))
            for n in names]


def test_curves_bd_and_compared_records(tmp_path):
    anchor = _records("anchor", [0.1, 0.2, 0.4, 0.8], [24, 27, 30, 33], [0.5, 0.4, 0.3, 0.2])
    # the same quality at 80 % of the rate: BD-rate −20 % on both metrics
    test = _records("test", [0.08, 0.16, 0.32, 0.64], [24, 27, 30, 33], [0.5, 0.4, 0.3, 0.2])
    partial = _records("partial", [0.1, 0.2], [20, 21], [0.9, 0.8], names=("a",))
    write_tsv(tmp_path / "other.tsv", anchor + partial)
    (tmp_path / "other.json").write_text(json.dumps({"records": test}))
    records = compared_records(f"{tmp_path / 'other.tsv'},{tmp_path / 'other.json'}",
                               ["a", "b"], coded={"partial-not-there"})
    assert {r["codec"] for r in records} == {"anchor", "partial", "test"}
    assert not compared_records(str(tmp_path / "other.json"), ["a"], coded={"test"})
    curves = curves_of(records, ["a", "b"])
    assert set(curves) == {"anchor", "test"}  # "partial" lacks image b: no curve
    bd = bd_against_all(curves, "test")
    for metric in ("psnr_db", "lpips"):
        assert bd["test vs anchor"][metric]["bd_rate_pct"] == pytest.approx(-20.0, abs=0.01)
    assert bd_against_all(curves, "missing") == {}


def test_classic_records_keep_decoded_sets():
    images = {"a": np.random.default_rng(1).integers(0, 256, (24, 40, 3), np.uint8)}
    sets = {}
    records = classic_records(images, {"jpeg": [1, 90]}, None, sets)
    assert [(r["codec"], r["point"]) for r in records] == [("JPEG (Pillow)", "q1"),
                                                           ("JPEG (Pillow)", "q90")]
    assert records[0]["bpp"] < records[1]["bpp"]
    assert set(sets) == {("JPEG (Pillow)", "q1"), ("JPEG (Pillow)", "q90")}
    assert sets[("JPEG (Pillow)", "q1")][0].shape == (24, 40, 3)


def test_select_sources_by_name_then_count():
    class Source:
        def __init__(self, name):
            self.name = name

    sources = [Source(n) for n in ("a", "b", "c", "d")]
    assert [s.name for s in select_sources(sources)] == ["a", "b", "c", "d"]
    assert [s.name for s in select_sources(sources, max_images=2)] == ["a", "b"]
    assert [s.name for s in select_sources(sources, "d,b")] == ["b", "d"]
    with pytest.raises(ReportArgumentError, match="x, y not among"):
        select_sources(sources, "a,y,x")


def test_plot_curves_writes_both_plots_for_many_codecs(tmp_path):
    records = []
    for k in range(12):  # more codecs than the colour cycle
        records += _records(f"codec {k}", [0.1, 0.2], [20 + k, 22 + k], [0.5, 0.4])
    curves = curves_of(records, ["a", "b"])
    assert len(curves) == 12
    plot_curves(curves, tmp_path / "rd", "test (2 images)")
    for metric in ("psnr_db", "lpips"):
        assert (tmp_path / f"rd_{metric}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
