"""The wheel works on its own: build it, install it into a fresh venv outside the checkout, run
``nlc-encode`` → ``nlc-decode`` → ``nlc-eval`` on a sample image and call ``nlc_jax.encode`` /
``nlc_jax.decode`` from Python, with nothing of the checkout importable.

The fresh venv reuses the dependencies already installed for the tests (one ``.pth`` line naming
this interpreter's site-packages, read after the venv's own, so the wheel's ``nlc_jax`` wins and
the checkout's editable install is not seen) instead of downloading JAX again; building the
wheel fetches only setuptools into pip's isolated build environment (from the index or pip's
cache). Marked ``ci``: it compiles COOL-CHIC's phases (a few CPU-minutes); ``make test-ci`` (and
``.ci/run``) runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config.recipe.n_itr=12", "--config.recipe.warmup_steps=2",
        "--config.recipe.final_steps=2", "--config.recipe.n_candidates=1",
        "--config.recipe.rdoq_passes=0"]

pytestmark = pytest.mark.ci


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{cmd[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(venv bin folder, a work folder outside the checkout, the environment to run in)."""
    work = tmp_path_factory.mktemp("package")
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("nlc_jax-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True, text=True)
    # --ignore-installed, and after it the .pth: pip must not take a checkout's nlc_jax (an
    # editable install, an egg-info on PYTHONPATH) for this wheel already installed
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--no-index", "--ignore-installed", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib.stdout.strip()) / "test_dependencies.pth").write_text("\n".join(shared) + "\n")
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "JAX_PLATFORMS": "cpu",
           "HOME": str(work), "MPLBACKEND": "Agg"}
    run = work / "run"
    run.mkdir()
    return env_dir / "bin", run, env


def test_installed_package_is_the_wheel_not_the_checkout(installed):
    bin_dir, run, env = installed
    out = _run([str(bin_dir / "python"), "-c", "import nlc_jax, nlc_jax.configs.coolchic as c; "
                "print(nlc_jax.__file__); print(c.__file__)"], run, env).stdout.split()
    assert all(Path(p).is_relative_to(bin_dir.parent) for p in out), out
    for command in ("nlc-encode", "nlc-decode", "nlc-train", "nlc-eval"):
        proc = subprocess.run([str(bin_dir / command)], cwd=run, env=env, capture_output=True,
                              text=True, timeout=300)  # no arguments: one line, exit 2
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(f"{command}: error: ")
    help_text = subprocess.run([str(bin_dir / "nlc-encode"), "--help"], cwd=run, env=env,
                               capture_output=True, text=True, timeout=300).stdout
    assert "--lmbdas" in help_text and "nlc-encode --config coolchic:fast" in help_text


def test_commands_and_api_from_the_installed_package(installed):
    bin_dir, run, env = installed
    originals = run / "originals"
    originals.mkdir()
    crop = np.asarray(Image.open(ROOT / "samples" / "kodim15_256.png").convert("RGB"))[:24, :32]
    Image.fromarray(crop).save(originals / "crop.png")
    _run([str(bin_dir / "nlc-encode"), "--config", "coolchic:fast", *TINY, "--input",
          str(originals), "--output", "encoded", "--progress=false"], run, env)
    nlc = run / "encoded" / "crop.nlc"
    assert nlc.stat().st_size > 0
    _run([str(bin_dir / "nlc-decode"), "encoded", "--output", "decoded"], run, env)
    decoded = np.asarray(Image.open(run / "decoded" / "crop.png"))
    assert decoded.shape == crop.shape
    report = _run([str(bin_dir / "nlc-eval"), "--originals", str(originals), "--decoded",
                   "encoded", "--classic", "none", "--lpips", "none", "--output", "eval"],
                  run, env).stdout
    assert "| encoded |" in report and (run / "eval" / "metrics.tsv").is_file()
    script = (
        "import numpy as np, nlc_jax\n"
        "from PIL import Image\n"
        "data = open('encoded/crop.nlc', 'rb').read()\n"
        "assert np.array_equal(nlc_jax.decode(data), np.asarray(Image.open('decoded/crop.png')))\n"
        f"config = nlc_jax.load_config('coolchic:fast', overrides={[t[9:] for t in TINY]!r})\n"
        "image = np.asarray(Image.open('originals/crop.png'))\n"
        "(result,) = nlc_jax.encode(image, config, [0.002])\n"
        "assert np.array_equal(nlc_jax.decode(result.data), result.reconstruction)\n"
        "print('api ok', len(result.data))\n")
    assert "api ok" in _run([str(bin_dir / "python"), "-c", script], run, env).stdout
    assert os.path.commonpath([run, ROOT]) != str(ROOT)  # ran outside the checkout
