"""Files on disk: atomic writes (readers see the old file or the complete new one, never a part of
it) and the cache folder for generated files that outlive a run (built-in dataset, metric statistics)."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode: int = 0o644):
    """Yield a binary file open on a temporary file beside ``path``. When the block succeeds the data
    is fsynced, the file renamed over ``path`` and the folder fsynced; on any error (or Ctrl-C) the
    temporary file is removed and ``path`` is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def cache_root() -> str:
    """$GANOPS_CACHE, else ~/.cache/ganops."""
    return os.environ.get("GANOPS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ganops")
