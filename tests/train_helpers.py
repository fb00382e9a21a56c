"""``train.py`` in a subprocess for the kill-and-resume tests (hyperprior soak, GLC stage I)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from toy_codec import subprocess_env

ROOT = Path(__file__).resolve().parents[1]


def run_train(workdir: Path, flags: list[str],
              kill_at_step: int | None = None) -> subprocess.CompletedProcess | subprocess.Popen:
    """Run ``train.py --workdir=<workdir> <flags>`` to the end (the completed process, output
    captured), or with ``kill_at_step`` SIGKILL it once a checkpoint of that step or later is on
    disk (asserts it was still running then)."""
    cmd = [sys.executable, str(ROOT / "train.py"), f"--workdir={workdir}", *flags]
    if kill_at_step is None:
        return subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True,
                              text=True, timeout=900)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        steps = [int(p.name) for p in workdir.glob("checkpoints/*") if p.name.isdigit()]
        if steps and max(steps) >= kill_at_step:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "train.py finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc
