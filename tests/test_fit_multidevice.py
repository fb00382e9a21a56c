"""shard_map over 4 CPU devices gives the same fits as one device (subprocess: XLA_FLAGS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).parent

SCRIPT = r"""
import json, jax, numpy as np
from toy_codec import ToyCodec
from nlc_jax.fit import FitOptions, fit_batch, make_mesh
from nlc_jax.data.datasets import ImageSource, shard
assert jax.device_count() == 4, jax.devices()
rng = np.random.default_rng(0)
codec = ToyCodec(steps=20)
targets = rng.uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)   # B=3: one filler fit
masks = np.ones((3, 16, 16), np.float32)
lmbdas, seeds = np.array([5e-4, 2e-3, 4e-3], np.float32), np.array([1, 2, 3])
opts = FitOptions(chunk_steps=5)
multi = fit_batch(codec, targets, masks, lmbdas, seeds, mesh=make_mesh(), options=opts)
single = fit_batch(codec, targets, masks, lmbdas, seeds, mesh=make_mesh(jax.devices()[:1]),
                   options=opts)
names = [ImageSource(f"im{i}") for i in range(10)]
shards = [[s.name for s in shard(names, i, 3)] for i in range(3)]
print(json.dumps({"multi": multi.eval_loss.tolist(), "single": single.eval_loss.tolist(),
                  "shards": shards, "sharding": str(multi.params["w"].shape)}))
"""


@pytest.mark.slow  # ~40 CPU-seconds of compilation in a subprocess
def test_shard_map_four_devices_matches_one():
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["multi"]) == 3 and out["sharding"] == "(3, 3, 3)"
    np.testing.assert_allclose(out["multi"], out["single"], rtol=1e-5)
    # each process of a multi-host job takes a disjoint, deterministic share; together: all
    flat = sorted(n for s in out["shards"] for n in s)
    assert flat == sorted(f"im{i}" for i in range(10))
    assert out["shards"][0] == ["im0", "im3", "im6", "im9"]
