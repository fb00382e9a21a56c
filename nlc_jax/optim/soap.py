"""SOAP: Shampoo's eigenbasis with Adam run inside it (Vyas et al. 2024, arXiv:2409.11321).

For every leaf of shape ``[d_0, ..., d_{r-1}]`` and every *preconditioned* axis ``i`` SOAP keeps a
Kronecker factor ``GG_i`` (``[d_i, d_i]``, an EMA of the gradient contracted with itself over all
other axes; ``L = G Gᵀ`` and ``R = Gᵀ G`` for a matrix) and its eigenbasis ``Q_i``. Each step the
gradient is rotated into the eigenbasis (``G ×_i Q_iᵀ`` for every preconditioned axis), Adam's two
moments are updated *there*, the Adam direction ``m / (√v + eps)`` is rotated back
(``×_i Q_i``), then ``GG`` absorbs the current gradient and, every ``precondition_frequency``
steps, ``Q`` is refreshed by one power-iteration step plus QR. An axis that is not preconditioned
keeps the identity basis, so a leaf without preconditioned axes gets plain Adam.

Which axes are preconditioned (fixed by the leaf's shape): those with ``1 < d_i <=
max_precond_dim``, on leaves of rank >= 2, and on 1-D leaves only with ``precondition_1d``.
Scalars are never preconditioned. Conv kernels ``[k, k, Cin, Cout]`` are treated like any other
leaf: each axis on its own, as the reference does with ``merge_dims=False`` (the setting Cool-chic
5.0.1 uses), so the layout (ours vs torch's ``[Cout, Cin, k, k]``) does not matter. Size-1 axes
(1×1 kernels) are skipped: the reference's 1×1 factor has eigenbasis 1, an identity.

Conventions taken from the reference implementation (``nikhilvyas/SOAP`` ``soap.py``, vendored as
Cool-chic's ``coolchic/training/soap.py``):

* First step: the first update only initialises the preconditioner (``GG`` from the first
  gradient, ``Q = eigh(GG)``, eigenvalues descending) and returns zero updates (no weight decay
  either), "so that the current gradients are never used in the projection". The Adam step
  count, hence bias correction, starts at 1 on the second call.
* ``GG`` is updated *after* the step, so the step at call ``t`` (1-based) uses a basis built from
  gradients ``1 .. t-1``. ``Q`` is refreshed at the end of calls whose Adam step count is a
  multiple of ``precondition_frequency``: per axis the columns of ``Q`` are sorted by their
  Rayleigh quotient ``diag(Qᵀ GG Q)`` (descending), ``v`` is permuted along that axis to match
  (not rotated, as in the paper), and ``Q ← qr(GG Q)``. The first moment ``m`` is rotated exactly
  into the new basis.
* ``eps`` is added to ``√v`` before bias correction (torch AdamW's form): the update is
  ``lr · √(1-β₂ⁿ)/(1-β₁ⁿ) · m / (√v + eps)``, i.e. optax.adam with ``eps`` replaced by
  ``eps / √(1-β₂ⁿ)``.
* Weight decay is decoupled and applied after the step, to the stepped parameters:
  ``p ← (p + u)(1 - lr · weight_decay)``.

Purity: the state is a pytree of fixed-shape float32 arrays plus one int32 counter; the
first-step eigh and the QR refresh run under predicates on the counter (``lax.while_loop`` of at
most one iteration, see :func:`_maybe`), so ``jit`` and ``vmap`` work unchanged, and under
``vmap`` the eigh / QR only run on steps where some fit of the batch needs them. Matmuls use
``Precision.HIGHEST`` (no TF32 on GPU: the rotations must stay orthonormal). The update is not
differentiable (``while_loop``), which no training loop needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

_HIGHEST = jax.lax.Precision.HIGHEST


class SoapState(NamedTuple):
    """SOAP state. ``mu``/``nu`` have the params' structure and shapes (float32); ``gg``/``q``
    have the params' structure with every leaf replaced by a tuple of ``[d_i, d_i]`` float32
    arrays, one per preconditioned axis ``i`` in increasing order (``()`` for Adam-only leaves)."""

    count: jax.Array  # [] int32, update calls so far
    mu: optax.Updates  # EMA of the gradient, stored in the eigenbasis
    nu: optax.Updates  # EMA of the squared gradient in the eigenbasis
    gg: Any  # Kronecker factors GG_i
    q: Any  # eigenbases Q_i (orthonormal columns, roughly descending eigenvalue)


def _precond_axes(shape: tuple[int, ...], max_precond_dim: int,
                  precondition_1d: bool) -> tuple[int, ...]:
    """Axes of a leaf of this shape that get a Kronecker factor."""
    if len(shape) == 0 or (len(shape) == 1 and not precondition_1d):
        return ()
    return tuple(i for i, d in enumerate(shape) if 1 < d <= max_precond_dim)


def _rotate(x: jax.Array, qs: tuple[jax.Array, ...], axes: tuple[int, ...],
            back: bool) -> jax.Array:
    """``x ×_i Q_iᵀ`` over ``axes`` (into the eigenbasis), or ``x ×_i Q_i`` with ``back``."""
    for axis, q in zip(axes, qs, strict=True):
        y = jnp.tensordot(x, q, axes=([axis], [1 if back else 0]), precision=_HIGHEST)
        x = jnp.moveaxis(y, -1, axis)
    return x


def _factor(g: jax.Array, axis: int) -> jax.Array:
    """``[d, d]`` contraction of ``g`` with itself over every axis but ``axis``."""
    others = [i for i in range(g.ndim) if i != axis]
    return jnp.tensordot(g, g, axes=(others, others), precision=_HIGHEST)


def _maybe(pred: jax.Array, fn: Callable[[Any], Any], operand: Any) -> Any:
    """``fn(operand)`` where the scalar bool ``pred`` holds, else ``operand``.

    A while loop of at most one iteration rather than ``lax.cond``: under ``vmap`` a batched
    ``cond`` becomes a select that evaluates ``fn`` on every call, whereas a batched while loop
    runs ``fn`` (for the whole batch, selecting per element) only when some element needs it.
    ``fn`` must get all its inputs from ``operand``; the barrier ties them to the loop-varying
    flag so that XLA cannot hoist ``fn``'s work out of the loop and run it unconditionally."""
    def body(state: tuple[jax.Array, Any]) -> tuple[jax.Array, Any]:
        flag, x = jax.lax.optimization_barrier(state)
        return jnp.zeros_like(flag), fn(x)

    return jax.lax.while_loop(lambda state: state[0], body, (pred, operand))[1]


def soap(
    learning_rate: float | optax.Schedule,
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float = -1.0,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    precondition_frequency: int = 10,
    max_precond_dim: int = 256,
    precondition_1d: bool = False,
    normalize_grads: bool = False,
    correct_bias: bool = True,
) -> optax.GradientTransformation:
    """SOAP optimizer as an optax transformation (returns the updates to add, lr included).

    Args:
      learning_rate: step size, or a schedule evaluated at the number of update calls so far
        (0 on the first call, whose update is zero anyway; see the module docstring).
      b1: Adam's first-moment decay. 0.95: Cool-chic's ``betas_model`` (and the reference default).
      b2: Adam's second-moment decay. 0.95: as ``b1``.
      shampoo_beta: EMA decay of the Kronecker factors ``GG``; negative means ``b2`` (reference
        default -1, Cool-chic leaves it).
      eps: added to ``√v`` before bias correction (reference default 1e-8, Cool-chic leaves it).
      weight_decay: decoupled decay rate, multiplied by the current lr; applied after the step.
        The reference defaults to 0.01 and Cool-chic sets 0.01 for network weights, 0 for
        latents; here it is off unless set. Needs ``params`` in ``update`` when > 0.
      precondition_frequency: refresh ``Q`` every this many steps (Cool-chic's
        ``precondition_frequency_model``: 10, 1 during its warm-up).
      max_precond_dim: axes longer than this keep the identity basis (Cool-chic's 256 for
        network weights, 0 for latents, i.e. Adam; reference default 10000). 0 gives Adam.
      precondition_1d: also precondition 1-D leaves (reference default and Cool-chic: False).
      normalize_grads: divide each leaf's rotated-back direction by its RMS (reference default and
        Cool-chic: False).
      correct_bias: Adam bias correction (reference default and Cool-chic: True).

    Returns:
      An ``optax.GradientTransformation`` whose state is a :class:`SoapState`.
    """
    if precondition_frequency < 1:
        raise ValueError(f"precondition_frequency must be >= 1, got {precondition_frequency}")
    if max_precond_dim < 0:
        raise ValueError(f"max_precond_dim must be >= 0, got {max_precond_dim}")
    beta_gg = b2 if shampoo_beta < 0 else shampoo_beta

    def axes_of(x: jax.Array) -> tuple[int, ...]:
        return _precond_axes(tuple(x.shape), max_precond_dim, precondition_1d)

    def init_fn(params: optax.Params) -> SoapState:
        def factors(p: jax.Array) -> tuple[jax.Array, ...]:
            return tuple(jnp.zeros((p.shape[a], p.shape[a]), jnp.float32) for a in axes_of(p))

        def eyes(p: jax.Array) -> tuple[jax.Array, ...]:
            return tuple(jnp.eye(p.shape[a], dtype=jnp.float32) for a in axes_of(p))

        zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
        return SoapState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros,
                         gg=jax.tree.map(factors, params), q=jax.tree.map(eyes, params))

    def update_fn(updates: optax.Updates, state: SoapState,
                  params: optax.Params | None = None) -> tuple[optax.Updates, SoapState]:
        if weight_decay > 0 and params is None:
            raise ValueError("soap with weight_decay > 0 needs params in update")
        grads, treedef = jax.tree.flatten(updates)
        mus, nus = treedef.flatten_up_to(state.mu), treedef.flatten_up_to(state.nu)
        ggs, qs = treedef.flatten_up_to(state.gg), treedef.flatten_up_to(state.q)
        ps = treedef.flatten_up_to(params) if weight_decay > 0 else [None] * len(grads)
        axes = [axes_of(g) for g in grads]

        count = state.count
        first = count == 0
        n = jnp.maximum(count, 1).astype(jnp.float32)  # Adam step of this call (none at call 0)
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        step_size = lr * jnp.sqrt(1 - b2**n) / (1 - b1**n) if correct_bias else lr

        outs, new_mu, new_nu, new_gg = [], [], [], []
        for g, mu, nu, gg, q, p, ax in zip(grads, mus, nus, ggs, qs, ps, axes, strict=True):
            g32 = g.astype(jnp.float32)
            gp = _rotate(g32, q, ax, back=False)
            m = b1 * mu + (1 - b1) * gp
            v = b2 * nu + (1 - b2) * gp * gp
            u = _rotate(m / (jnp.sqrt(v) + eps), q, ax, back=True)
            if normalize_grads:
                u = u / (1e-30 + jnp.sqrt(jnp.mean(u * u)))
            u = -step_size * u
            if weight_decay > 0:
                u = u - lr * weight_decay * (p.astype(jnp.float32) + u)
            outs.append(jnp.where(first, 0.0, u).astype(g.dtype))
            new_mu.append(jnp.where(first, mu, m))
            new_nu.append(jnp.where(first, nu, v))
            new_gg.append(tuple(beta_gg * f + (1 - beta_gg) * _factor(g32, a)
                                for f, a in zip(gg, ax, strict=True)))

        Carry = tuple[list, list, list, list]  # GG, Q, mu, nu: per leaf

        def first_basis(carry: Carry) -> Carry:
            # mu and nu are still zero: nothing to rotate or permute.
            gg_l, _, mu_l, nu_l = carry
            q_l = [tuple(jnp.linalg.eigh(f)[1][:, ::-1] for f in fs) for fs in gg_l]
            return gg_l, q_l, mu_l, nu_l

        def refresh(carry: Carry) -> Carry:
            out_q, out_mu, out_nu = [], [], []
            for fs, q_old, mu, nu, ax in zip(*carry, axes, strict=True):
                q_new = []
                for f, q, a in zip(fs, q_old, ax, strict=True):
                    fq = jnp.matmul(f, q, precision=_HIGHEST)
                    order = jnp.argsort(jnp.sum(q * fq, axis=0), descending=True)
                    nu = jnp.take(nu, order, axis=a)
                    # one power-iteration step from the sorted basis:
                    # GG Q[:, order] = (GG Q)[:, order]
                    q_new.append(jnp.linalg.qr(fq[:, order])[0])
                q_new = tuple(q_new)
                out_mu.append(_rotate(_rotate(mu, q_old, ax, back=True), q_new, ax, back=False))
                out_q.append(q_new)
                out_nu.append(nu)
            return carry[0], out_q, out_mu, out_nu

        carry = _maybe(first, first_basis, (new_gg, qs, new_mu, new_nu))
        _, q_l, mu_l, nu_l = _maybe((count > 0) & (count % precondition_frequency == 0),
                                    refresh, carry)
        new_state = SoapState(
            count=optax.safe_int32_increment(count),
            mu=treedef.unflatten(mu_l), nu=treedef.unflatten(nu_l),
            gg=treedef.unflatten(new_gg), q=treedef.unflatten(q_l))
        return treedef.unflatten(outs), new_state

    return optax.GradientTransformation(init_fn, update_fn)
