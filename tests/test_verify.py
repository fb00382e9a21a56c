"""nlc_jax.fit.verify: every file of an RD run decodes to the encoder's reconstruction, checked
as arrays; a diverged fit or one differing pixel stops the run (toy codec)."""

from __future__ import annotations

import numpy as np
import pytest
from coolchic_helpers import smooth_image
from toy_codec import ToyCodec

from nlc_jax.data.datasets import ImageSource
from nlc_jax.data.images import load_image, save_png
from nlc_jax.fit import verify
from nlc_jax.fit.pipeline import EncodeSettings


@pytest.fixture
def toy_decoder(monkeypatch):
    """The toy codec's files are not containers: decode them with the toy codec."""
    monkeypatch.setattr(verify.registry, "decode_bytes", ToyCodec().decode)


def _settings(*lmbdas: float) -> EncodeSettings:
    return EncodeSettings(lmbdas=lmbdas, batch_size=4, checkpoint_every_s=None, progress=False)


def test_files_are_checked_against_the_kept_reconstruction(tmp_path, toy_decoder):
    sources = [ImageSource(f"im{i}", array=smooth_image(12, 16, seed=i)) for i in range(2)]
    files = verify.encode_and_verify(ToyCodec(steps=20), sources, tmp_path, _settings(1e-3, 1e-1))
    assert [(f.image, f.lmbda) for f in files] == [("im0", 1e-3), ("im0", 1e-1), ("im1", 1e-3),
                                                   ("im1", 1e-1)]
    assert all(f.path.is_file() and f.bpp > 0 and np.isfinite(f.psnr_db) for f in files)
    # A rerun resumes (nothing is fitted) and checks the files of the first run again.
    again = verify.encode_and_verify(ToyCodec(steps=20), sources, tmp_path, _settings(1e-3, 1e-1))
    assert [f.psnr_db for f in again] == [f.psnr_db for f in files]
    kept = tmp_path / ".encoder" / "im1_lmbda0.1.nlc.png"
    pixels = load_image(kept).copy()
    pixels[0, 0, 0] ^= 1
    save_png(kept, pixels)
    with pytest.raises(verify.VerifyError, match=r"im1_lmbda0.1.nlc: decoded pixels differ.*1 "):
        verify.encode_and_verify(ToyCodec(steps=20), sources, tmp_path, _settings(1e-3, 1e-1))
    kept.unlink()
    with pytest.raises(verify.VerifyError, match="no encoder reconstruction"):
        verify.encode_and_verify(ToyCodec(steps=20), sources, tmp_path, _settings(1e-3, 1e-1))


def test_a_diverged_fit_fails_loudly(tmp_path, toy_decoder):
    class Diverging(ToyCodec):
        def eval_loss(self, params, target, mask, lmbda):
            loss, aux = super().eval_loss(params, target, mask, lmbda)
            return loss * np.nan, aux

        def loss(self, params, target, mask, lmbda, phase, progress, rng):
            loss, aux = super().loss(params, target, mask, lmbda, phase, progress, rng)
            return loss * np.nan, aux

    sources = [ImageSource("im", array=smooth_image(8, 8))]
    with pytest.raises(verify.VerifyError, match=r"1 fit\(s\) failed: im \(lmbda 0.001\): fit "
                                                 "diverged"):
        verify.encode_and_verify(Diverging(steps=8), sources, tmp_path, _settings(1e-3))
