"""One batch of images, in memory: prepare targets → pad to one shape → :func:`fit_batch` →
take each fit's parameters → ``finalize`` into a file (gray inputs marked gray), with every
decoder candidate of the codec, keeping per fit the file of lowest ``MSE + λ·bpp``. Candidates
are ranked on files coded without refinement (``finalize(refine=False)``: no weight RDOQ);
only each fit's winner is then coded in full.

:func:`code_batch` is what :func:`nlc_jax.encode`, ``nlc-encode`` (through
:mod:`nlc_jax.fit.pipeline`), the demo and the benchmarks run; nothing else rebuilds the steps.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from nlc_jax.codecs.base import EncodeResult, OverfittedCodec, Params
from nlc_jax.codecs.gray import code_as_gray
from nlc_jax.fit.buckets import bucket_shape, pad_target
from nlc_jax.fit.engine import Engine, FitOptions, Progress, fit_batch


@dataclasses.dataclass(frozen=True)
class CodedFit:
    """One fit of a batch after coding.

    Attributes:
      result: the file, the encoder's reconstruction and its numbers; ``None`` when the fit
        diverged (see ``error``) or was not asked for.
      params: the kept candidate's fitted parameters (one fit's pytree, on the host).
      eval_loss: the engine's hard-quantized loss of the kept candidate's fit.
      costs: ``MSE + λ·bpp`` of each decoder candidate's file, by candidate label (with
        several candidates, of their files coded without refinement, as they were ranked).
      error: why there is no result (``None`` when there is one).
    """

    result: EncodeResult | None
    params: Params | None
    eval_loss: float
    costs: dict[str, float]
    error: str | None = None


def rd_cost(data: bytes, reconstruction: np.ndarray, image: np.ndarray, lmbda: float) -> float:
    """``MSE([0, 1] RGB) + λ · bpp`` of a file ``data`` decoding to ``reconstruction`` ``[H, W,
    3]`` uint8 of ``image`` (what the codecs minimise)."""
    diff = (reconstruction.astype(np.float64) - image.astype(np.float64)) / 255.0
    return float(np.mean(diff ** 2)) + lmbda * 8.0 * len(data) / image[..., 0].size


def candidate_label(codec: OverfittedCodec) -> str:
    """A decoder candidate's name: its config's preset, else the codec name."""
    return str(getattr(codec, "config", {}).get("preset", codec.name))


def decoder_candidates(codec: OverfittedCodec) -> list[OverfittedCodec]:
    """The codecs to fit for every image: ``codec.arch_candidates()`` where the codec has
    them (COOL-CHIC's per-image decoder size), else ``[codec]``."""
    return codec.arch_candidates() if hasattr(codec, "arch_candidates") else [codec]


def padded_shape(targets: Sequence[np.ndarray], multiple: int) -> tuple[int, int]:
    """The smallest ``(H, W)``, multiples of ``multiple``, that holds every ``[h, w, c]``
    target."""
    return bucket_shape(max(t.shape[0] for t in targets), max(t.shape[1] for t in targets),
                        multiple)


class TargetShapes:
    """Target ``(h, w, c)`` per image size (the codec's ``prepare_target`` on a blank image)."""

    def __init__(self, codec: OverfittedCodec):
        self.codec = codec
        self.cache: dict[tuple[int, int], tuple[int, int, int]] = {}

    def __call__(self, size: tuple[int, int]) -> tuple[int, int, int]:
        if size not in self.cache:
            blank = np.zeros((*size, 3), np.uint8)
            self.cache[size] = tuple(np.shape(self.codec.prepare_target(blank)))
        return self.cache[size]


ProgressHook = Callable[[OverfittedCodec, Engine], Callable[[Progress], None] | None]
CheckpointHook = Callable[[OverfittedCodec, tuple[int, ...]], Any]


def code_batch(candidates: Sequence[OverfittedCodec], engines: Sequence[Engine],
               images: Sequence[np.ndarray], lmbdas: Sequence[float], seeds: Sequence[int], *,
               multiple: int = 1, options: FitOptions | None = None,
               wanted: Sequence[bool] | None = None, on_candidate: ProgressHook | None = None,
               checkpoint_for: CheckpointHook | None = None) -> list[CodedFit]:
    """Fit and code ``B`` (image, λ, seed) triples in one padded batch per decoder candidate.

    Args:
      candidates: the decoder candidates (:func:`decoder_candidates`), usually one codec.
      engines: one :class:`Engine` per candidate (reused across batches).
      images: ``B`` images ``[H_b, W_b, 3]`` uint8 (sizes may differ; all are padded to one).
      lmbdas: ``B`` rate-distortion weights.
      seeds: ``B`` seeds of the fits.
      multiple: the padded target sides are multiples of this.
      options: engine options (default ``FitOptions()``).
      wanted: ``B`` flags; fits flagged ``False`` are fitted (they share the batch) but not
        coded (their ``result`` is ``None``). Default: all.
      on_candidate: called before each candidate's fit; returns its ``on_progress`` callback.
      checkpoint_for: ``(codec, padded target shape) -> BatchCheckpoint`` of a candidate's fit
        (cleared after the fit is coded); default: no checkpoints.

    Returns:
      ``B`` :class:`CodedFit`, in input order.
    """
    options = options or FitOptions()
    wanted = [True] * len(images) if wanted is None else list(wanted)
    # With several candidates each is coded unrefined (no weight RDOQ) to rank them; only each
    # fit's winner is then coded in full, when its codec refines at all.
    refine = len(candidates) == 1
    # per fit: (candidate index, its CodedFit, its finalize job) of the best candidate so far
    best: list[tuple[int, CodedFit, tuple] | None] = [None] * len(images)
    costs: list[dict[str, float]] = [{} for _ in images]
    errors: list[str | None] = [None] * len(images)
    for k, (codec, engine) in enumerate(zip(candidates, engines, strict=True)):
        targets = [np.asarray(codec.prepare_target(image), np.float32) for image in images]
        shape = padded_shape(targets, multiple)
        padded = [pad_target(t, shape) for t in targets]
        checkpoint = None if checkpoint_for is None else checkpoint_for(
            codec, shape + targets[0].shape[2:])
        fit = fit_batch(codec, np.stack([p[0] for p in padded]), np.stack([p[1] for p in padded]),
                        np.asarray(lmbdas, np.float32), np.asarray(seeds, np.int64),
                        engine=engine, options=options,
                        on_progress=None if on_candidate is None else on_candidate(codec, engine),
                        checkpoint=checkpoint)
        label = candidate_label(codec)
        jobs = {}
        for i, (image, target, lmbda) in enumerate(zip(images, targets, lmbdas, strict=True)):
            if not wanted[i]:
                continue
            if fit.failed[i]:
                errors[i] = (f"fit diverged ({int(fit.nan_steps[i])} non-finite steps, "
                             f"{int(fit.restarts[i])} restarts)")
                continue
            params = jax.tree.map(lambda x, i=i: np.asarray(x[i]), fit.params)
            jobs[i] = (params, target, image, float(lmbda))
        for i, result in _finalize_all(codec, jobs, refine).items():
            params, image, lmbda = jobs[i][0], images[i], float(lmbdas[i])
            cost = rd_cost(result.data, result.reconstruction, image, lmbda)
            if best[i] is None or cost < min(costs[i].values()):
                best[i] = (k, CodedFit(result, params, float(fit.eval_loss[i]), costs[i]),
                           jobs[i])
            costs[i][label] = cost
        if checkpoint is not None:
            checkpoint.clear()
    for k, codec in enumerate(candidates):
        if refine or not getattr(codec, "refines", True):
            continue  # already coded in full, or refinement would write the same file
        won = {i: b[2] for i, b in enumerate(best) if b is not None and b[0] == k}
        for i, result in _finalize_all(codec, won, True).items():
            best[i] = (k, dataclasses.replace(best[i][1], result=result), best[i][2])
    return [b[1] if b is not None else CodedFit(None, None, float("nan"), costs[i], errors[i])
            for i, b in enumerate(best)]


def _finalize_all(codec: OverfittedCodec,
                  jobs: dict[int, tuple[Params, np.ndarray, np.ndarray, float]],
                  refine: bool = True) -> dict[int, EncodeResult]:
    """``codec.finalize`` of every ``(params, target, image, λ)`` job, on one thread per CPU
    core (a finalize is a long run of small jitted evaluations, weight RDOQ's, which release
    the GIL while XLA computes), results in job order; the first error is raised."""
    def one(job):
        params, target, image, lmbda = job
        return code_as_gray(codec.finalize(params, target, image, lmbda, refine), image)
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return {i: one(job) for i, job in jobs.items()}
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="nlc-code") as pool:
        futures = {i: pool.submit(one, job) for i, job in jobs.items()}
        return {i: future.result() for i, future in futures.items()}
