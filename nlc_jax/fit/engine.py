"""Batched overfitting: many independent fits of an :class:`OverfittedCodec` in one jit'd step.

A *batch* holds ``B`` fits (one image target and one λ each) and ``K`` random-init candidates per
fit, so every array of the in-flight :class:`FitState` has leading axes ``[B, K]``. The codec's
pure ``loss`` is ``vmap``-ed over ``K`` (candidates share the target) and over ``B`` (targets,
masks, λ); ``B`` is split over a 1-D device mesh with ``jax.shard_map`` (fits never communicate).
One compiled call runs ``n`` optimisation steps (``lax.fori_loop``) with the state buffers donated.
While the first phase compiles and runs, the later phases' chunks compile on a background thread
(``FitOptions.compile_ahead``): on a CPU host, compilation is most of a short fit's time.

Per-fit safety and schedules, all inside the batched state:

* NaN guard: a step whose loss or gradients are not finite is not applied (the fit keeps its
  last finite parameters) and counted in ``nan_steps``; a fit with more than half of a chunk's
  steps non-finite is re-initialised from a fresh seed (``restarts``, at most ``max_restarts``).
  Fits are independent under ``vmap``, so one diverging fit never changes the others.
* Best iterate: after every chunk the hard-quantised ``codec.eval_loss`` is evaluated and the
  best parameters so far are kept per fit (the result is the best iterate, not the last one).
* Early stopping: with ``patience`` set, a fit whose eval loss did not improve for ``patience``
  evaluations stops updating (``active`` is cleared).
* Candidate selection: at the end of a phase with ``keep`` set, the ``keep`` best candidates of
  every fit (by best eval loss) are gathered on device; the next phase starts from them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from nlc_jax import compilation
from nlc_jax.codecs.base import OverfittedCodec

AXIS = "fits"


class FitState(NamedTuple):
    """In-flight state of a batch; every leaf has leading axes ``[B, K]``."""

    params: Any
    opt_state: Any
    rng: jax.Array          # [B, K, 2] uint32 raw keys
    best_params: Any
    best_loss: jax.Array    # [B, K] float32 (inf until the first evaluation)
    stale: jax.Array        # [B, K] int32 evaluations since the last improvement
    active: jax.Array       # [B, K] bool (early stopping clears it)
    nan_steps: jax.Array    # [B, K] int32 non-finite steps (all phases)
    chunk_nan: jax.Array    # [B, K] int32 non-finite steps in the current chunk
    restarts: jax.Array     # [B, K] int32
    last_loss: jax.Array    # [B, K] float32 training loss of the last step


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Engine settings that do not change the codec.

    Attributes:
      chunk_steps: optimisation steps per device call; evaluation, best-iterate tracking,
        progress reports and checkpoints happen between chunks.
      patience: evaluations without improvement before a fit stops; ``None`` never stops.
      max_restarts: re-initialisations allowed per diverging fit.
      batch_mode: ``"vmap"`` (fits in parallel) or ``"map"`` (fits one after another inside
        the same compiled step; for backends where vmapped per-fit convolutions are slow).
      compile_ahead: compile the later phases' chunks on a background thread while the first
        phase compiles and runs (the results are the same either way).
    """

    chunk_steps: int = 50
    patience: int | None = None
    max_restarts: int = 1
    batch_mode: str = "vmap"
    compile_ahead: bool = True

    def __post_init__(self) -> None:
        if self.chunk_steps < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {self.chunk_steps}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 (or None: never stop), got {self.patience}")


@dataclasses.dataclass
class BatchFit:
    """Result of :func:`fit_batch` for ``B`` fits (host numpy arrays).

    Attributes:
      params: pytree, leaves ``[B, ...]``: best iterate of the best surviving candidate.
      eval_loss: ``[B]`` hard-quantised loss of ``params``.
      aux: ``{"mse", "bpp", "psnr_db", …}`` → ``[B]`` from ``codec.eval_loss``.
      nan_steps: ``[B]`` non-finite steps skipped; restarts: ``[B]`` re-initialisations.
      failed: ``[B]`` bool, no finite result (the fit must be reported, not written).
      steps: optimisation steps run per candidate (all phases).
    """

    params: Any
    eval_loss: np.ndarray
    aux: dict[str, np.ndarray]
    nan_steps: np.ndarray
    restarts: np.ndarray
    failed: np.ndarray
    steps: int


def _tree_where(cond: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _strong(tree: Any) -> Any:
    """Drop weak types (e.g. from ``jnp.full(.., 0.5)``) so chunk after chunk hits one trace."""
    return jax.tree.map(lambda x: x + jnp.zeros((), x.dtype), tree)


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _over_fits(fn: Callable, n_batched: int, n_shared: int = 0,
               batch_mode: str = "vmap") -> Callable:
    """Map ``fn(state_like..., target, mask, lmbda, *shared)`` over ``[B, K]``.

    The first ``n_batched`` arguments carry ``[B, K]``; the next three (target, mask, lmbda)
    carry ``[B]``; the last ``n_shared`` are broadcast scalars. Candidates (``K``) are always
    vmapped; fits (``B``) are vmapped, or looped inside the compiled call (``lax.map``) with
    ``batch_mode="map"`` for backends where vmapped per-fit convolutions are slow.
    """
    inner = jax.vmap(fn, in_axes=(0,) * n_batched + (None,) * (3 + n_shared))
    if batch_mode == "vmap":
        return jax.vmap(inner, in_axes=(0,) * n_batched + (0,) * 3 + (None,) * n_shared)
    if batch_mode != "map":
        raise ValueError(f"batch_mode must be 'vmap' or 'map', got {batch_mode!r}")

    def mapped(*args):
        per_fit, shared = args[:n_batched + 3], args[n_batched + 3:]
        return jax.lax.map(lambda a: inner(*a, *shared), per_fit)
    return mapped


class Engine:
    """Compiled batched functions for one codec on one device mesh.

    Args:
      codec: the overfitted codec.
      mesh: 1-D mesh with axis ``"fits"``; ``None`` runs on the default device without
        ``shard_map``. The batch size ``B`` must be a multiple of the mesh size.
      options: :class:`FitOptions`.
    """

    def __init__(self, codec: OverfittedCodec, mesh: Mesh | None = None,
                 options: FitOptions = FitOptions()):
        self.codec = codec
        self.mesh = mesh
        self.options = options
        self.phases = list(codec.recipe())
        if not self.phases:
            raise ValueError(f"codec {codec.name!r} has an empty recipe")
        self._cache: dict[tuple, Callable] = {}
        self._ahead: dict[tuple, concurrent.futures.Future] = {}  # compiling in the background
        self._ran: set[tuple] = set()  # chunk programs already run (compiled)

    @property
    def n_devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    def candidates_in_phase(self, index: int) -> int:
        """``K`` at the start of phase ``index``."""
        k = self.codec.n_candidates
        for phase in self.phases[:index]:
            if phase.keep is not None:
                k = min(k, phase.keep)
        return k

    # ---- compiled pieces -------------------------------------------------------------------
    def _compile(self, key: tuple, fn: Callable, n_sharded: int, n_replicated: int,
                 n_out: int, donate: tuple[int, ...] = ()) -> Callable:
        if key in self._cache:
            return self._cache[key]
        if self.mesh is not None:
            fn = jax.shard_map(fn, mesh=self.mesh,
                               in_specs=(P(AXIS),) * n_sharded + (P(),) * n_replicated,
                               out_specs=(P(AXIS),) * n_out if n_out > 1 else P(AXIS),
                               check_vma=False)
        compiled = compilation.jit(fn, donate_argnums=donate)
        self._cache[key] = compiled
        return compiled

    def _init_fn(self, phase_index: int, target_shape: tuple[int, int, int], k: int) -> Callable:
        codec, phase = self.codec, self.phases[phase_index]
        opt = codec.optimizer(phase)

        def one(seed_key, target, mask, lmbda):
            del target, mask, lmbda  # vmapped like the other inputs; init needs none of them
            keys = jax.vmap(lambda i: jax.random.fold_in(seed_key, i))(jnp.arange(k))

            def cand(key):
                init_key, train_key = jax.random.split(key)
                params = _strong(codec.init(init_key, target_shape))
                return params, _strong(opt.init(params)), train_key
            params, opt_state, rng = jax.vmap(cand)(keys)
            z = jnp.zeros((k,), jnp.int32)
            return FitState(params, opt_state, rng, params, jnp.full((k,), jnp.inf, jnp.float32),
                            z, jnp.ones((k,), bool), z, z, z, jnp.zeros((k,), jnp.float32))

        batched = jax.vmap(one)
        return self._compile(("init", phase_index, target_shape, k), batched, 4, 0, 1)

    def batched_step_fns(self, phase_index: int,
                         target_shape: tuple[int, int, int]) -> tuple[Callable, Callable]:
        """The uncompiled batched pieces of a chunk of phase ``phase_index``:
        ``step(state, targets, masks, lmbdas, progress) -> state`` (one optimisation step of
        every fit and candidate) and ``evaluate(state, targets, masks, lmbdas, chunk_len) ->
        state`` (hard-quantised evaluation, best iterate, early stopping, restarts); ``state``
        leaves ``[B, K, ...]``, targets ``[B, H, W, C]``, masks ``[B, H, W]``, lmbdas ``[B]``.
        The roofline benchmark compiles them one by one."""
        codec, phase = self.codec, self.phases[phase_index]
        opt = codec.optimizer(phase)
        patience, max_restarts = self.options.patience, self.options.max_restarts

        def step(state: FitState, target, mask, lmbda, progress) -> FitState:
            rng, sub = jax.random.split(state.rng)
            loss_fn = functools.partial(codec.loss, target=target, mask=mask, lmbda=lmbda,
                                        phase=phase, progress=progress, rng=sub)
            (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
            updates, opt_state = opt.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            finite = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(params)
            ok = finite & state.active
            bad = (~finite).astype(jnp.int32)
            return state._replace(
                params=_tree_where(ok, params, state.params),
                opt_state=_tree_where(ok, opt_state, state.opt_state),
                rng=rng, nan_steps=state.nan_steps + bad, chunk_nan=state.chunk_nan + bad,
                last_loss=jnp.where(finite, loss, state.last_loss))

        def evaluate(state: FitState, target, mask, lmbda, chunk_len) -> FitState:
            loss, _ = codec.eval_loss(state.params, target, mask, lmbda)
            loss = jnp.where(jnp.isfinite(loss), loss, jnp.inf)
            better = loss < state.best_loss
            stale = jnp.where(better, 0, state.stale + 1)
            active = state.active if patience is None else state.active & (stale < patience)
            diverged = ((2 * state.chunk_nan > chunk_len) | ~_all_finite(state.params)) & (
                state.restarts < max_restarts)
            key, new_rng = jax.random.split(jax.random.fold_in(state.rng, 7919))
            fresh = _strong(codec.init(key, target_shape))
            return state._replace(
                params=_tree_where(diverged, fresh, state.params),
                opt_state=_tree_where(diverged, opt.init(fresh), state.opt_state),
                rng=jnp.where(diverged, new_rng, state.rng),
                best_params=_tree_where(better, state.params, state.best_params),
                best_loss=jnp.where(better, loss, state.best_loss),
                stale=jnp.where(diverged, 0, stale), active=active | diverged,
                restarts=state.restarts + diverged.astype(jnp.int32))

        mode = self.options.batch_mode
        return _over_fits(step, 1, 1, mode), _over_fits(evaluate, 1, 1, mode)

    def _chunk_fn(self, phase_index: int, target_shape: tuple[int, int, int]) -> Callable:
        """``n`` steps of a phase, then evaluation, best-iterate tracking, early stopping and
        restarts of diverged fits: one compiled call."""
        vstep, veval = self.batched_step_fns(phase_index, target_shape)
        total = float(max(self.phases[phase_index].steps, 1))

        def chunk(state, targets, masks, lmbdas, start, n):
            state = state._replace(chunk_nan=jnp.zeros_like(state.chunk_nan))

            def body(i, s):
                return vstep(s, targets, masks, lmbdas, (start + i).astype(jnp.float32) / total)
            state = jax.lax.fori_loop(0, n, body, state)
            return veval(state, targets, masks, lmbdas, n)

        return self._compile(("chunk", self._phase_key(phase_index), target_shape), chunk, 4, 2,
                             1, donate=(0,))

    def _phase_key(self, phase_index: int) -> Any:
        """Phases the codec declares equivalent (e.g. the two warm-ups) share one chunk."""
        codec = self.codec
        if hasattr(codec, "phase_key"):
            return codec.phase_key(self.phases[phase_index])
        return phase_index

    def _select_fn(self, keep: int) -> Callable:
        def select(state: FitState) -> FitState:
            order = jnp.argsort(state.best_loss, axis=1)[:, :keep]          # [B, keep]
            return jax.tree.map(lambda x: jax.vmap(lambda leaf, i: leaf[i])(x, order), state)
        return self._compile(("select", keep), select, 1, 0, 1)

    def _reset_opt_fn(self, phase_index: int) -> Callable:
        opt = self.codec.optimizer(self.phases[phase_index])

        def reset(state: FitState) -> FitState:
            init = _strong(jax.vmap(jax.vmap(opt.init))(state.params))
            return state._replace(opt_state=init, active=jnp.ones_like(state.active),
                                  stale=jnp.zeros_like(state.stale))
        return self._compile(("reset", phase_index), reset, 1, 0, 1, donate=(0,))

    def _final_fn(self) -> Callable:
        codec = self.codec

        def one(state: FitState, target, mask, lmbda):
            best = jnp.argmin(state.best_loss)
            params = jax.tree.map(lambda x: x[best], state.best_params)
            loss, aux = codec.eval_loss(params, target, mask, lmbda)
            return (params, loss, aux, jnp.sum(state.nan_steps), jnp.sum(state.restarts),
                    ~jnp.isfinite(state.best_loss[best]))
        fn = jax.vmap(one)
        return self._compile(("final",), fn, 4, 0, 6)

    # ---- public API --------------------------------------------------------------------------
    def init_state(self, phase_index: int, targets: jax.Array, masks: jax.Array,
                   lmbdas: jax.Array, seeds: jax.Array) -> FitState:
        """Fresh state for phase ``phase_index`` (``[B, K_phase]``), seeded per fit."""
        k = self.candidates_in_phase(phase_index)
        return self._init_fn(phase_index, tuple(targets.shape[1:]), k)(
            _seed_keys(seeds), targets, masks, lmbdas)

    def abstract_state(self, phase_index: int, targets, masks, lmbdas, seeds) -> FitState:
        """Shapes/dtypes of the state at phase ``phase_index`` (for checkpoint restore and
        compiling ahead); the inputs may be arrays or ``jax.ShapeDtypeStruct``."""
        k = self.candidates_in_phase(phase_index)
        return self._init_fn(phase_index, tuple(targets.shape[1:]), k).eval_shape(
            jax.eval_shape(_seed_keys, seeds), targets, masks, lmbdas)

    def run_phase_chunk(self, phase_index: int, state: FitState, targets, masks, lmbdas,
                        start: int, n: int) -> FitState:
        """Run steps ``[start, start + n)`` of phase ``phase_index``, then evaluate."""
        key = self._ahead_key(phase_index, state.best_loss.shape[1], targets)
        pending = self._ahead.pop(key, None)
        if pending is not None:
            pending.exception()  # wait; a failed compile is redone (and reported) here
        self._ran.add(key)
        return self._chunk_fn(phase_index, tuple(targets.shape[1:]))(
            state, targets, masks, lmbdas, jnp.int32(start), jnp.int32(n))

    def _ahead_key(self, phase_index: int, k: int, targets) -> tuple:
        """What a chunk's compiled program depends on: its phase key, ``K`` and the inputs'
        shape."""
        return self._phase_key(phase_index), k, tuple(targets.shape)

    def compile_ahead(self, current: int, targets, masks, lmbdas, seeds) -> None:
        """Compile the chunks of the phases after ``current`` on one background thread, in
        order, for these inputs (``[B, ...]``, on the engine's devices), skipping programs
        equal to an earlier phase's (e.g. a second warm-up with as many candidates);
        :meth:`run_phase_chunk` waits for a phase's compile instead of starting its own. XLA
        compiles without holding the GIL, so this overlaps with the caller compiling and
        running phase ``current``."""
        shape = tuple(targets.shape[1:])
        sharded = (None if self.mesh is None
                   else jax.sharding.NamedSharding(self.mesh, P(AXIS)))

        def spec(x):
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharded)
        inputs = jax.tree.map(spec, (targets, masks, lmbdas))
        scalar = jax.ShapeDtypeStruct((), jnp.int32)
        jobs, seen = [], {self._ahead_key(current, self.candidates_in_phase(current), targets)}
        for index in range(current + 1, len(self.phases)):
            key = self._ahead_key(index, self.candidates_in_phase(index), targets)
            if key in seen or key in self._ahead or key in self._ran:
                continue
            seen.add(key)
            state = jax.tree.map(spec, self.abstract_state(index, targets, masks, lmbdas, seeds))
            fn = self._chunk_fn(index, shape)
            jobs.append((key, functools.partial(fn.lower, state, *inputs, scalar, scalar)))
        if not jobs:
            return
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nlc-compile")
        for key, lower in jobs:
            self._ahead[key] = pool.submit(lambda lower=lower: lower().compile())
        pool.shutdown(wait=False)

    def cancel_ahead(self) -> None:
        """Drop the background compiles that have not started (e.g. after a failed fit)."""
        for pending in self._ahead.values():
            pending.cancel()
        self._ahead.clear()

    def end_phase(self, phase_index: int, state: FitState) -> FitState:
        """Candidate selection after phase ``phase_index`` and optimizer reset for the next."""
        keep = self.phases[phase_index].keep
        if keep is not None and keep < state.best_loss.shape[1]:
            state = self._select_fn(keep)(state)
        nxt = phase_index + 1
        if nxt < len(self.phases) and self.phases[nxt].reset_optimizer:
            state = self._reset_opt_fn(nxt)(state)
        return state

    def finish(self, state: FitState, targets, masks, lmbdas) -> BatchFit:
        """Best candidate's best iterate per fit, with its hard-quantised metrics."""
        params, loss, aux, nan_steps, restarts, failed = jax.device_get(
            self._final_fn()(state, targets, masks, lmbdas))
        steps = sum(p.steps for p in self.phases)
        return BatchFit(params, np.asarray(loss), {k: np.asarray(v) for k, v in aux.items()},
                        np.asarray(nan_steps), np.asarray(restarts), np.asarray(failed), steps)

    def put(self, x: Any) -> Any:
        """Place host arrays with a leading batch axis on the mesh (split over ``"fits"``)."""
        if self.mesh is None:
            return jax.device_put(x)
        sharding = jax.sharding.NamedSharding(self.mesh, P(AXIS))
        return jax.device_put(x, sharding)


def _seed_keys(seeds: jax.Array) -> jax.Array:
    """``[B]`` integer seeds → ``[B, 2]`` raw PRNG keys."""
    return jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))


def make_mesh(devices: list | None = None) -> Mesh:
    """1-D mesh ``("fits",)`` over ``devices`` (default: this process's local devices)."""
    devices = list(jax.local_devices()) if devices is None else list(devices)
    return Mesh(np.array(devices), (AXIS,))


@dataclasses.dataclass
class Progress:
    """What :func:`fit_batch` reports between chunks."""

    phase: str
    phase_index: int
    step: int           # steps done in this batch (all phases)
    total_steps: int
    mean_loss: float    # mean training loss over the batch's finite fits


def fit_batch(codec: OverfittedCodec, targets: np.ndarray, masks: np.ndarray,
              lmbdas: np.ndarray, seeds: np.ndarray, *, mesh: Mesh | None = None,
              options: FitOptions = FitOptions(), engine: Engine | None = None,
              on_progress: Callable[[Progress], None] | None = None,
              checkpoint: Any | None = None) -> BatchFit:
    """Fit ``B`` independent codecs at once.

    Args:
      codec: an :class:`OverfittedCodec`.
      targets: ``[B, H, W, C]`` float32 fitting targets (already padded to one shape).
      masks: ``[B, H, W]`` float32, 1 on valid positions.
      lmbdas: ``[B]`` float32 rate-distortion weights.
      seeds: ``[B]`` integer seeds (candidate ``k`` of fit ``b`` uses ``fold_in(seed_b, k)``).
      mesh: 1-D ``"fits"`` mesh; ``B`` is padded internally to a multiple of its size.
      options: :class:`FitOptions`.
      engine: reuse compiled functions across batches (must match ``codec``/``mesh``).
      on_progress: called after every chunk with a :class:`Progress`.
      checkpoint: a :class:`nlc_jax.fit.checkpoint.BatchCheckpoint` to resume from and save to.

    Returns:
      :class:`BatchFit` with leading axis ``B``.
    """
    engine = engine or Engine(codec, mesh, options)
    b = len(targets)
    pad = (-b) % engine.n_devices
    host = [np.asarray(targets, np.float32), np.asarray(masks, np.float32),
            np.asarray(lmbdas, np.float32), np.asarray(seeds, np.int64)]
    if pad:  # filler fits (copies of the last one) so every device gets the same count
        host = [np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]) for x in host]
    targets_d, masks_d, lmbdas_d = (engine.put(x) for x in host[:3])
    seeds_d = engine.put(host[3].astype(np.uint32))

    phase_index, step_in_phase, state = 0, 0, None
    if checkpoint is not None:
        restored = checkpoint.restore(engine, targets_d, masks_d, lmbdas_d, seeds_d)
        if restored is not None:
            phase_index, step_in_phase, state = restored
    if state is None:
        state = engine.init_state(0, targets_d, masks_d, lmbdas_d, seeds_d)
    if options.compile_ahead:
        engine.compile_ahead(phase_index, targets_d, masks_d, lmbdas_d, seeds_d)

    try:
        state = _run_phases(engine, state, phase_index, step_in_phase, targets_d, masks_d,
                            lmbdas_d, b, options, on_progress, checkpoint)
    except BaseException:
        engine.cancel_ahead()
        raise
    result = engine.finish(state, targets_d, masks_d, lmbdas_d)
    if pad:
        result = _take(result, b)
    return result


def _run_phases(engine: Engine, state: FitState, phase_index: int, step_in_phase: int,
                targets_d, masks_d, lmbdas_d, b: int, options: FitOptions,
                on_progress: Callable[[Progress], None] | None,
                checkpoint: Any | None) -> FitState:
    """The chunks of :func:`fit_batch` from ``(phase_index, step_in_phase)`` to the end."""
    total = sum(p.steps for p in engine.phases)
    done = sum(p.steps for p in engine.phases[:phase_index]) + step_in_phase
    while phase_index < len(engine.phases):
        phase = engine.phases[phase_index]
        while step_in_phase < phase.steps:
            n = min(options.chunk_steps, phase.steps - step_in_phase)
            state = engine.run_phase_chunk(phase_index, state, targets_d, masks_d, lmbdas_d,
                                           step_in_phase, n)
            step_in_phase += n
            done += n
            if on_progress is not None:
                losses = np.asarray(jax.device_get(state.last_loss))[:b]
                finite = losses[np.isfinite(losses)]
                on_progress(Progress(phase.name, phase_index, done, total,
                                     float(finite.mean()) if finite.size else float("nan")))
            if checkpoint is not None and step_in_phase < phase.steps:
                checkpoint.maybe_save(state, phase_index, step_in_phase)
        state = engine.end_phase(phase_index, state)
        phase_index, step_in_phase = phase_index + 1, 0
        if checkpoint is not None and phase_index < len(engine.phases):
            checkpoint.maybe_save(state, phase_index, 0)
    return state


def _take(fit: BatchFit, b: int) -> BatchFit:
    return dataclasses.replace(
        fit, params=jax.tree.map(lambda x: x[:b], fit.params), eval_loss=fit.eval_loss[:b],
        aux={k: v[:b] for k, v in fit.aux.items()}, nan_steps=fit.nan_steps[:b],
        restarts=fit.restarts[:b], failed=fit.failed[:b])
