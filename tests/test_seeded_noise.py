"""Seeded noise: bit-identical in numpy, jax, jit, vmap, padded grids and 4 CPU devices."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32

from nlc_jax.entropy.seeded_noise import gaussian_grid, gaussian_pyramid, threefry2x32

ROOT = Path(__file__).resolve().parents[1]


def test_threefry_matches_jax_reference():
    rng = np.random.default_rng(0)
    for _ in range(5):
        key = rng.integers(0, 2 ** 32, 2, dtype=np.uint64).astype(np.uint32)
        counts = rng.integers(0, 2 ** 32, 64, dtype=np.uint64).astype(np.uint32)
        ref = np.asarray(threefry_2x32(jnp.asarray(key), jnp.asarray(counts)))
        ours = np.concatenate(threefry2x32((key[0], key[1]), counts[:32], counts[32:]))
        ours_jax = np.concatenate([np.asarray(a) for a in threefry2x32(
            (jnp.uint32(key[0]), jnp.uint32(key[1])), jnp.asarray(counts[:32]),
            jnp.asarray(counts[32:]), jnp)])
        np.testing.assert_array_equal(ours, ref)
        np.testing.assert_array_equal(ours_jax, ref)


def test_golden_grid():
    """The format is frozen: files decode with exactly these values forever."""
    grid = gaussian_grid(2026, 3, 37, 53, 3)
    assert grid.dtype == np.float32 and grid.shape == (37, 53, 3)
    assert hashlib.sha256(grid.tobytes()).hexdigest() == (
        "041f3d145cf27a7d6cc3444dd580da6bcff3e425a3241310c90aa1620c1143ef")


def test_numpy_jax_jit_vmap_identical():
    ref = gaussian_grid(123456789, 2, 31, 45, 2)
    eager = np.asarray(gaussian_grid(jnp.uint32(123456789), 2, 31, 45, 2, jnp))
    jitted = np.asarray(jax.jit(lambda s: gaussian_grid(s, 2, 31, 45, 2, jnp))(
        jnp.uint32(123456789)))
    seeds = jnp.array([7, 123456789, 2 ** 32 - 1], jnp.uint32)
    batched = np.asarray(jax.vmap(lambda s: gaussian_grid(s, 2, 31, 45, 2, jnp))(seeds))
    for other in (eager, jitted, batched[1]):
        np.testing.assert_array_equal(other, ref)
    np.testing.assert_array_equal(batched[2], gaussian_grid(2 ** 32 - 1, 2, 31, 45, 2))


def test_position_indexed_so_padding_keeps_values():
    big = gaussian_grid(5, 0, 64, 128, 1)
    np.testing.assert_array_equal(gaussian_grid(5, 0, 17, 23, 1), big[:17, :23])
    pyramid = gaussian_pyramid(5, [(17, 23), (9, 12)], 2)
    np.testing.assert_array_equal(pyramid[1], gaussian_grid(5, 1, 9, 12, 2))


def test_statistics_and_independence():
    grid = gaussian_grid(1, 0, 512, 512, 4).astype(np.float64)
    assert abs(grid.mean()) < 0.005 and abs(grid.std() - 1.0) < 0.005
    assert np.abs(grid).max() <= 2 * np.sqrt(3.0)
    kurtosis = np.mean(grid ** 4) / np.mean(grid ** 2) ** 2 - 3.0
    assert abs(kurtosis + 0.3) < 0.02   # Irwin–Hall, n = 4
    # neighbours, channels, levels and seeds are uncorrelated
    flat = grid.reshape(-1, 4)
    assert abs(np.corrcoef(flat[:, 0], flat[:, 1])[0, 1]) < 0.01
    assert abs(np.corrcoef(grid[:, :-1, 0].ravel(), grid[:, 1:, 0].ravel())[0, 1]) < 0.01
    other = gaussian_grid(2, 0, 512, 512, 1).astype(np.float64)
    assert abs(np.corrcoef(grid[..., 0].ravel(), other[..., 0].ravel())[0, 1]) < 0.01
    level1 = gaussian_grid(1, 1, 512, 512, 1).astype(np.float64)
    assert abs(np.corrcoef(grid[..., 0].ravel(), level1[..., 0].ravel())[0, 1]) < 0.01


def test_out_of_layout_sizes_are_refused():
    with pytest.raises(ValueError, match="counter layout"):
        gaussian_grid(0, 16, 4, 4, 1)
    with pytest.raises(ValueError, match="counter layout"):
        gaussian_grid(0, 0, 1 << 17, 4, 1)


SCRIPT = r"""
import json, jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, PartitionSpec as P
from nlc_jax.entropy.seeded_noise import gaussian_grid
assert jax.device_count() == 4, jax.devices()
mesh = Mesh(np.array(jax.devices()), ("fits",))
seeds = jnp.arange(8, dtype=jnp.uint32) * 977 + 3
fn = jax.vmap(lambda s: gaussian_grid(s, 1, 19, 26, 2, jnp))
sharded = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=P("fits"), out_specs=P("fits")))(seeds)
ref = np.stack([gaussian_grid(int(s), 1, 19, 26, 2) for s in np.asarray(seeds)])
print(json.dumps({"equal": bool(np.array_equal(np.asarray(sharded), ref))}))
"""


def test_four_cpu_devices_give_the_same_noise():
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"equal": True}
