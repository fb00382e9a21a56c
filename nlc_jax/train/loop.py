"""The training loop: ``train_and_evaluate(config, workdir)`` (Flax-examples style).

Data parallel over all devices with ``jax.sharding``: a 1-D mesh ``("data",)``, the batch sharded
over it and the parameters/optimizer state replicated, one jitted step. The same code runs on one
CPU, several (forced) CPU devices, a GPU, or several hosts (call ``jax.distributed.initialize()``
first; each process feeds its share of the global batch).

Exact resume: the step's random key is ``fold_in(fold_in(key(seed), 1), step)`` and the input pipeline's batch
``k`` is a pure function of the seed, so restoring ``{step, params, opt_state}`` from the latest
orbax checkpoint continues the same trajectory.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from clu import metrics as clu_metrics
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from nlc_jax.codecs.weights import export_inference
from nlc_jax.data.images import list_images, load_image
from nlc_jax.data.pipeline import iterate, train_dataset
from nlc_jax.train.checkpoint import TrainCheckpoints
from nlc_jax.train.optim import make_optimizer
from nlc_jax.train.task import STATE_STATS, TrainTask, make_task
from nlc_jax.train.writer import MetricWriter


class ConfigError(ValueError):
    """A training config value that cannot work (one-line message)."""


def check_config(config: Any, n_devices: int) -> None:
    """Raise :class:`ConfigError` for values the loop cannot run with."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ConfigError(msg)

    need(int(config.num_steps) > 0, f"num_steps must be > 0, got {config.num_steps}")
    need(int(config.batch_size) > 0, f"batch_size must be > 0, got {config.batch_size}")
    need(int(config.batch_size) % n_devices == 0,
         f"batch_size={config.batch_size} is not divisible by the {n_devices} devices")
    need(float(config.learning_rate) > 0, f"learning_rate must be > 0, got {config.learning_rate}")
    need(config.compute_dtype in ("float32", "bfloat16"),
         f"compute_dtype must be 'float32' or 'bfloat16', got {config.compute_dtype!r}")
    for key in ("log_every", "checkpoint_every", "keep_checkpoints"):
        need(int(config[key]) > 0, f"{key} must be > 0, got {config[key]}")
    need(int(config.stop_at_step) >= 0, f"stop_at_step must be >= 0, got {config.stop_at_step}")


def load_eval_images(config: Any) -> list[np.ndarray]:
    """The first ``eval_images`` images of ``config.eval_data`` (none if it is empty)."""
    if not config.eval_data or int(config.eval_images) <= 0:
        return []
    return [load_image(p) for p in list_images(config.eval_data)[:int(config.eval_images)]]


def _make_step(task: TrainTask, tx: optax.GradientTransformation, seed: int):
    base = jax.random.fold_in(jax.random.key(seed), 1)

    def step(state: dict[str, Any], batch: jax.Array) -> tuple[dict[str, Any], dict[str, Any]]:
        images = batch.astype(jnp.float32) / 255.0
        rng = jax.random.fold_in(base, state["step"])
        loss_fn = task.loss
        if getattr(task, "loss_takes_step", False):  # e.g. a discriminator's start step
            loss_fn = functools.partial(task.loss, step=state["step"])
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state["params"], images, rng)
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = dict(metrics)
        stats = metrics.pop(STATE_STATS, None)
        if stats is not None:  # non-gradient updates (EMA codebooks, dead-code restarts)
            params = task.update_state(params, stats, jax.random.fold_in(rng, 1))
        metrics = dict(metrics, loss=loss, grad_norm=optax.global_norm(grads))
        return {"step": state["step"] + 1, "params": params, "opt_state": opt_state}, metrics

    return step


def _averager(names: list[str]) -> type[clu_metrics.Collection]:
    return clu_metrics.Collection.create(
        **{n: clu_metrics.Average.from_output(n) for n in names})


def evaluate_and_write(task: TrainTask, params: Any, images: list[np.ndarray], step: int,
                       writer: MetricWriter, workdir: Path) -> dict[str, float]:
    """Real-coding evaluation on ``images``; written to the writer and ``eval_<step>.json``."""
    t0 = time.perf_counter()
    result = task.evaluate(jax.device_get(params), images)
    result["seconds_per_image"] = (time.perf_counter() - t0) / max(len(images), 1)
    writer.write(step, result, split="eval")
    if jax.process_index() == 0:
        (workdir / f"eval_{step}.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    return result


@dataclasses.dataclass
class Trainer:
    """A model's jitted, data-parallel training step and its initial state.

    Attributes:
      task: the model being trained.
      state: ``{"step", "params", "opt_state"}``, replicated over the mesh.
      step: ``step(state, batch) -> (state, metrics)``; ``batch`` is ``[B, H, W, 3]`` uint8 sharded
        with ``batch_sharding``.
      batch_sharding: batch axis split over the ``"data"`` mesh axis.
    """

    task: TrainTask
    state: dict[str, Any]
    step: Any
    batch_sharding: NamedSharding

    def put_batch(self, local: np.ndarray) -> jax.Array:
        """This process's ``[B / processes, H, W, 3]`` uint8 share → the global sharded batch."""
        return jax.make_array_from_process_local_data(self.batch_sharding, local)


def build_trainer(config: Any) -> Trainer:
    """Validate ``config`` and build the model, optimizer, initial state and jitted step."""
    devices = np.asarray(jax.devices())
    check_config(config, devices.size)
    task = make_task(config)
    mesh = Mesh(devices, ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    tx = make_optimizer(config)

    def init_state():
        params = task.init(jax.random.fold_in(jax.random.key(config.seed), 0), config.crop)
        return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}

    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
    step = jax.jit(_make_step(task, tx, int(config.seed)),
                   in_shardings=(replicated, batch_sharding),
                   out_shardings=(replicated, replicated))
    return Trainer(task, jax.jit(init_state, out_shardings=replicated)(), step, batch_sharding)


def train_and_evaluate(config: Any, workdir: str | Path) -> dict[str, Any]:
    """Train ``config.codec`` on ``config.data``, checkpointing and evaluating into ``workdir``.

    Resumes from the latest checkpoint in ``workdir`` if there is one. Stops at
    ``config.stop_at_step`` when it is set (> 0; a later run continues), else at
    ``config.num_steps``, where it also writes the inference export ``<workdir>/export``.

    Returns:
      ``{"step": last step, "train": last logged train metrics, "eval": last eval metrics}``.

    Raises:
      ConfigError, DataSpecError, CheckpointError: bad config, data or checkpoint.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    check_config(config, jax.device_count())
    local_batch = int(config.batch_size) // jax.process_count()
    dataset = train_dataset(config.data, crop=int(config.crop), batch_size=local_batch,
                            seed=int(config.seed), shard_index=jax.process_index(),
                            shard_count=jax.process_count(),
                            data_dir=config.get("tfds_data_dir") or None)
    trainer = build_trainer(config)
    task, state = trainer.task, trainer.state
    is_chief = jax.process_index() == 0
    if is_chief:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=1))
    checkpoints = TrainCheckpoints(workdir / "checkpoints", config.keep_checkpoints)
    start = checkpoints.latest_step()
    if start is not None:
        state = checkpoints.restore(start, state)
        logging.info("resumed from step %d", start)
    start = int(jax.device_get(state["step"]))

    writer = MetricWriter(workdir, enabled=is_chief)
    eval_images = load_eval_images(config)
    end = int(config.num_steps)
    if int(config.stop_at_step) > 0:
        end = min(end, int(config.stop_at_step))

    averager, logged, evaluated = None, {}, {}
    batches = iterate(dataset, start, threads=int(config.data_threads),
                      prefetch=int(config.prefetch))
    bar = tqdm(total=end, initial=start, unit="step", disable=not is_chief or not config.progress,
               dynamic_ncols=True)
    step = start
    try:
        while step < end:
            state, metrics = trainer.step(state, trainer.put_batch(next(batches)))
            step += 1
            update = _averager(sorted(metrics)).single_from_model_output(**metrics)
            averager = update if averager is None else averager.merge(update)
            bar.update(1)
            if step % int(config.log_every) == 0 or step == end:
                logged = {k: float(v) for k, v in averager.compute().items()}
                writer.write(step, logged)
                bar.set_postfix(loss=f"{logged['loss']:.4g}")
                averager = None
            if step % int(config.checkpoint_every) == 0 or step == end:
                checkpoints.save(step, state)
            if eval_images and int(config.eval_every) > 0 and step % int(config.eval_every) == 0:
                evaluated = evaluate_and_write(task, state["params"], eval_images, step, writer,
                                               workdir)
    finally:
        bar.close()
        checkpoints.close()
        writer.flush()
    if step == int(config.num_steps):
        if is_chief:
            export_inference(workdir / "export", task.export(state["params"]),
                             task.model_config())
        if eval_images and not (int(config.eval_every) > 0 and step % int(config.eval_every) == 0):
            evaluated = evaluate_and_write(task, state["params"], eval_images, step, writer,
                                           workdir)
    return {"step": step, "train": logged, "eval": evaluated}
