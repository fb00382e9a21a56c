"""Batched fitting engine: batched == single fits, padding/masking, NaN guard, candidates."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from toy_codec import ToyCodec

from nlc_jax.fit import Engine, FitOptions, fit_batch
from nlc_jax.fit.buckets import BucketPolicy, pad_target, plan_batches, wasted_fraction

OPTIONS = FitOptions(chunk_steps=10)


@pytest.fixture(scope="module")
def codec():
    return ToyCodec(steps=40)


@pytest.fixture(scope="module")
def engine(codec):
    return Engine(codec, None, OPTIONS)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (2, 4, 4, 3))
    # smooth-ish 16x16 images (blocks + noise) so the toy codec has something to fit
    imgs = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2) + rng.integers(-8, 9, (2, 16, 16, 3))
    return np.clip(imgs, 0, 255).astype(np.uint8)


def _fit(codec, engine, images, lmbdas, seeds):
    targets = np.stack([codec.prepare_target(i) for i in images])
    masks = np.ones(targets.shape[:3], np.float32)
    return fit_batch(codec, targets, masks, np.asarray(lmbdas, np.float32),
                     np.asarray(seeds), engine=engine, options=OPTIONS)


def _decoded(codec, fit, index, image):
    params = jax.tree.map(lambda x: x[index], fit.params)
    result = codec.finalize(params, codec.prepare_target(image), image, 0.0)
    np.testing.assert_array_equal(codec.decode(result.data), result.reconstruction)
    return result


@pytest.fixture(scope="module")
def batched(codec, engine, images):
    return _fit(codec, engine, images, [0.0005, 0.004], [11, 12])


@pytest.fixture(scope="module")
def singles(codec, engine, images):
    return [_fit(codec, engine, images[i:i + 1], [lm], [sd])
            for i, (lm, sd) in enumerate([(0.0005, 11), (0.004, 12)])]


def test_batched_equals_single_fits(codec, images, batched, singles):
    for i, single in enumerate(singles):
        np.testing.assert_allclose(batched.eval_loss[i], single.eval_loss[0], rtol=1e-5)
        for key in ("mse", "bpp"):
            np.testing.assert_allclose(batched.aux[key][i], single.aux[key][0], rtol=1e-4)
        a = _decoded(codec, batched, i, images[i])
        b = _decoded(codec, single, 0, images[i])
        np.testing.assert_array_equal(a.reconstruction, b.reconstruction)
    # the fits learned something (vs. a flat grey image), and λ orders the rates
    flat = [-10 * np.log10(np.mean((i / 255.0 - 0.5) ** 2)) for i in images]
    assert np.all(batched.aux["psnr_db"] > np.array(flat) + 4.0), (batched.aux, flat)
    assert batched.aux["bpp"][0] > batched.aux["bpp"][1]
    assert not batched.failed.any() and not batched.nan_steps.any()


def test_different_seeds_give_different_candidates(codec, engine, images, batched):
    other = _fit(codec, engine, images, [0.0005, 0.004], [21, 22])
    assert not np.allclose(other.params["w"], batched.params["w"])


def test_padded_masked_fit_matches_unpadded(codec, images, singles):
    target = codec.prepare_target(images[0])
    padded, mask = pad_target(target, (32, 32))
    assert mask.sum() == 16 * 16 and mask[16:].sum() == 0
    fit = fit_batch(codec, padded[None], mask[None], np.array([0.0005], np.float32),
                    np.array([11]), options=OPTIONS)
    ref = singles[0]
    assert abs(fit.aux["bpp"][0] / ref.aux["bpp"][0] - 1) < 0.005
    assert abs(fit.aux["psnr_db"][0] - ref.aux["psnr_db"][0]) < 0.05
    a = _decoded(codec, fit, 0, images[0])   # finalize crops the padded latents
    b = _decoded(codec, ref, 0, images[0])
    assert abs(len(a.data) / len(b.data) - 1) < 0.005
    assert abs(a.info["psnr_db"] - b.info["psnr_db"]) < 0.05


def test_nan_guard_isolates_diverging_fit(codec, engine, images, singles):
    # λ > 1 makes the toy codec return NaN in the second half of every phase
    fit = _fit(codec, engine, images[::-1], [5.0, 0.0005], [99, 11])
    assert fit.nan_steps[0] > 0 and fit.restarts[0] == 1
    assert np.isfinite(fit.eval_loss[0]) and not fit.failed[0]
    # the healthy neighbour is exactly what it is alone
    assert fit.nan_steps[1] == 0
    np.testing.assert_allclose(fit.eval_loss[1], singles[0].eval_loss[0], rtol=1e-5)


def test_candidate_selection_keeps_best(codec, engine, images):
    targets = np.stack([codec.prepare_target(i) for i in images])
    masks = np.ones(targets.shape[:3], np.float32)
    lmbdas, seeds = np.array([0.0005, 0.004], np.float32), np.array([11, 12])
    state = engine.init_state(0, targets, masks, lmbdas, seeds)
    assert state.best_loss.shape == (2, codec.n_candidates)
    state = engine.run_phase_chunk(0, state, targets, masks, lmbdas, 0, 10)
    best = np.asarray(state.best_loss).min(axis=1)
    state = engine.end_phase(0, state)
    assert state.best_loss.shape == (2, 1)
    np.testing.assert_allclose(np.asarray(state.best_loss)[:, 0], best)


def test_bucket_plan_and_waste():
    shapes = [(512, 768), (768, 512), (500, 760), (100, 100), (64, 64)]
    plan = plan_batches(shapes, 2, BucketPolicy(multiple=64))
    assert [b.shape for b in plan] == [(512, 768), (768, 512), (128, 128), (64, 64)]
    assert plan[0].fits == (0, 2)
    assert sorted(i for b in plan for i in b.fits) == list(range(5))
    valid = sum(h * w for h, w in shapes)
    computed = 2 * (512 * 768 * 2 + 128 * 128 + 64 * 64)
    assert wasted_fraction(plan, shapes, 2) == pytest.approx(1 - valid / computed)
    assert wasted_fraction(plan_batches([(64, 64)] * 4, 4), [(64, 64)] * 4, 4) == 0.0
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches(shapes, 0)


@pytest.mark.slow  # one more compilation
def test_map_mode_equals_vmap(codec, images, batched):
    targets = np.stack([codec.prepare_target(i) for i in images])
    fit = fit_batch(codec, targets, np.ones(targets.shape[:3], np.float32),
                    np.array([0.0005, 0.004], np.float32), np.array([11, 12]),
                    options=FitOptions(chunk_steps=10, batch_mode="map"))
    np.testing.assert_allclose(fit.eval_loss, batched.eval_loss, rtol=1e-5)


def test_compile_ahead_compiles_each_program_once(images):
    """The later phases compile on the background thread, the caller never compiles them again,
    and the fit is the same as without compiling ahead."""
    import threading

    compiles = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(threading.current_thread().name)
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        fits = {}
        for ahead in (False, True):
            codec = ToyCodec(steps=40, lr=0.07)
            targets = np.stack([codec.prepare_target(i) for i in images])
            compiles.clear()
            fits[ahead] = fit_batch(codec, targets, np.ones(targets.shape[:3], np.float32),
                                    np.array([0.0005, 0.004], np.float32), np.array([11, 12]),
                                    options=FitOptions(chunk_steps=10, compile_ahead=ahead))
            fits[ahead, "threads"] = list(compiles)
    finally:
        jax.monitoring.clear_event_listeners()
    assert not any(t.startswith("nlc-compile") for t in fits[False, "threads"])
    assert sum(t.startswith("nlc-compile") for t in fits[True, "threads"]) == 1  # the final phase
    assert len(fits[True, "threads"]) == len(fits[False, "threads"])
    np.testing.assert_array_equal(fits[True].eval_loss, fits[False].eval_loss)


def test_parallel_coding_equals_sequential(codec, images, batched, monkeypatch):
    """code_batch's finalize runs one thread per core: same files, in order, errors raised."""
    from nlc_jax.fit import coding

    monkeypatch.setattr(coding.os, "cpu_count", lambda: 2)
    jobs = {i: (jax.tree.map(lambda x, i=i: np.asarray(x[i]), batched.params),
                codec.prepare_target(images[i]), images[i], lm)
            for i, lm in ((1, 0.004), (0, 0.0005))}
    results = coding._finalize_all(codec, jobs)
    assert list(results) == [1, 0]
    for i, (params, target, image, lm) in jobs.items():
        assert results[i].data == codec.finalize(params, target, image, lm).data

    class Failing(ToyCodec):
        def finalize(self, params, target, image, lmbda, refine=True):
            if lmbda < 0.001:
                raise ValueError("cannot code this fit")
            return super().finalize(params, target, image, lmbda, refine)
    with pytest.raises(ValueError, match="cannot code this fit"):
        coding._finalize_all(Failing(steps=40), jobs)


def test_candidates_are_ranked_unrefined_and_only_winners_refined(images):
    """Several decoder candidates: every fit is coded with ``refine=False`` to rank them, then
    each image's winner alone is coded in full (COOL-CHIC's weight RDOQ runs once per image)."""
    from nlc_jax.fit import coding

    calls = []

    class Recording(ToyCodec):
        def finalize(self, params, target, image, lmbda, refine=True):
            calls.append((self.name, refine))
            return super().finalize(params, target, image, lmbda, refine)

    candidates = [Recording(steps=2, name="short"), Recording(steps=40, name="long")]
    engines = [Engine(c, None, OPTIONS) for c in candidates]
    coded = coding.code_batch(candidates, engines, list(images), [0.0005, 0.0005], [3, 4],
                              options=OPTIONS)
    assert sorted(calls[:4]) == [("long", False)] * 2 + [("short", False)] * 2
    winners = [min(c.costs, key=c.costs.get) for c in coded]
    assert sorted(calls[4:]) == sorted((w, True) for w in winners)
    for c, image in zip(coded, images, strict=True):
        assert set(c.costs) == {"short", "long"}
        codec = candidates[[x.name for x in candidates].index(min(c.costs, key=c.costs.get))]
        expected = codec.finalize(c.params, codec.prepare_target(image), image, 0.0005)
        assert c.result.data == expected.data

    # a codec with nothing to refine is not coded a second time
    calls.clear()
    for c in candidates:
        c.refines = False
    coding.code_batch(candidates, engines, list(images), [0.0005, 0.0005], [3, 4],
                      options=OPTIONS)
    assert sorted(calls) == [("long", False)] * 2 + [("short", False)] * 2
