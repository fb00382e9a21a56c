"""``make demo`` (``nlc_jax.demo``): files written, decoded from disk, bit-exact by array."""

from __future__ import annotations

import pytest
from coolchic_helpers import smooth_image
from PIL import Image

import nlc_jax
from nlc_jax import demo


@pytest.mark.slow  # ~1-4 CPU-minutes: compiling COOL-CHIC's phases
def test_demo_checks_every_file_against_the_encoder(tmp_path, monkeypatch, capsys):
    load = nlc_jax.load_config

    def tiny(name, preset=None, overrides=()):
        return load(name, preset, ["recipe.n_itr=12", "recipe.warmup_steps=2",
                                   "recipe.final_steps=2", "recipe.n_candidates=1",
                                   "recipe.rdoq_passes=0"])

    monkeypatch.setattr(nlc_jax, "load_config", tiny)
    (tmp_path / "in").mkdir()
    Image.fromarray(smooth_image(16, 24, seed=5)).save(tmp_path / "in" / "a.png")
    assert demo.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "a " in out and out.rstrip().endswith("yes")
    assert (tmp_path / "out" / "a.nlc").is_file() and (tmp_path / "out" / "a.png").is_file()
