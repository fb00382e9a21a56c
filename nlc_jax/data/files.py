"""Atomic file output: a reader never sees a partial file, a crash never leaves one behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process umask, read without changing it where Linux reports it (``os.umask`` can
    only be read by setting it, which would race with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_file_mode() -> int:
    """The mode ``open(path, "wb")`` gives a new file: ``0o666`` less the umask (for files that
    another library writes with ``0o600``, e.g. safetensors)."""
    return 0o666 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The rename is atomic on POSIX file systems, so ``path`` either keeps its old content or holds
    all of ``data``; the temporary file is removed if anything fails. The file gets the mode a
    plain ``open(path, "wb")`` would give it (``0o666`` less the umask), not the temporary
    file's ``0o600``. A failed write (e.g. a full disk) raises :class:`OSError` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), plain_file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is not None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
