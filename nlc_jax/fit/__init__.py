"""Batched fitting engine for overfitted codecs (see ``docs/fit.md``).

API:

* :func:`fit_batch(codec, targets, masks, lmbdas, seeds, *, mesh, options, on_progress,
  checkpoint) <nlc_jax.fit.engine.fit_batch>`: fit ``B`` codecs at once. ``targets``
  ``[B, H, W, C]`` float32 (one padded shape), ``masks`` ``[B, H, W]``, ``lmbdas`` ``[B]``,
  ``seeds`` ``[B]``. Returns a :class:`BatchFit` (``params`` leaves ``[B, ...]``: best iterate of
  the best candidate; ``eval_loss``, ``aux`` (``mse``/``bpp``/``psnr_db`` from
  ``codec.eval_loss``), ``nan_steps``, ``restarts``, ``failed``: all ``[B]``).
* :class:`Engine`: the compiled, vmapped/shard_mapped functions; reuse one across batches.
* :func:`make_mesh`: 1-D ``("fits",)`` device mesh for ``jax.shard_map``.
* :func:`nlc_jax.fit.coding.code_batch`: one batch of images in memory → coded files (every
  decoder candidate, the cheapest kept); what :func:`nlc_jax.encode` and the pipeline run.
* :func:`encode_images` / :func:`encode_learned` (``nlc_jax.fit.pipeline``): whole-dataset
  encoding (shape buckets, λ sweeps, checkpoint/resume, atomic ``.nlc`` writes,
  ``results.tsv``); used by ``nlc-encode``.
* :func:`nlc_jax.fit.verify.encode_and_verify`: ``encode_images`` plus every file checked
  against the encoder's reconstruction (the RD benchmarks).
"""

from nlc_jax.fit.engine import (
    BatchFit,
    Engine,
    FitOptions,
    FitState,
    Progress,
    fit_batch,
    make_mesh,
)
from nlc_jax.fit.pipeline import EncodeOutcome, EncodeSettings, encode_images, encode_learned

__all__ = ["BatchFit", "EncodeOutcome", "EncodeSettings", "Engine", "FitOptions", "FitState",
           "Progress", "encode_images", "encode_learned", "fit_batch", "make_mesh"]
