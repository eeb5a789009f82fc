"""Files on disk, one home for the rules every command follows: outputs appear whole or not at all
(:func:`atomic_write`, :func:`temporary_path`), single input files are regular files
(:func:`regular_file`), paths built from user text stay inside their folder (:func:`inside`), and
generated files that outlive a run live in the cache folder (:func:`cache_root`)."""
import contextlib
import os
import stat
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


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(path) -> str:
    """'a regular file', 'a FIFO (named pipe)', 'a folder', ... for an existing path (symlinks followed)."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def regular_file(path, what: str) -> str:
    """``path`` when it names a regular file (after following symlinks); else ``FileNotFoundError`` for
    a path that does not exist and ``ValueError`` naming the kind of file for one that does (reading a
    FIFO or a device would hang or never end). ``what`` names the argument, e.g. '--network'."""
    path = os.fspath(path)
    try:
        kind = file_kind(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: {path!r} does not exist") from None
    except OSError as e:   # a symlink loop, a path through a file, no permission
        raise ValueError(f"{what}: {path!r} cannot be read ({e.strerror})") from None
    if kind != "a regular file":
        raise ValueError(f"{what}: {path!r} is {kind}, not a regular file")
    return path


def inside(folder, name: str, what: str, flat: bool = False) -> str:
    """``folder/name``, refused (``ValueError`` naming ``what``) unless it stays inside ``folder``: no
    absolute name, no '..' that climbs out, no empty name; with ``flat`` also no subfolder (no '/',
    no '..' at all), for names that must be one entry of ``folder`` (a run folder)."""
    folder = os.path.abspath(os.fspath(folder))
    if not name or os.path.isabs(name) or "\0" in name:
        raise ValueError(f"{what}: {name!r} is not a name inside {folder}")
    if flat and (os.sep in name or "/" in name or name in (".", "..") or ".." in name.split(os.sep)):
        raise ValueError(f"{what}: {name!r} must be a plain name (no '/' or '..'), one entry of {folder}")
    path = os.path.normpath(os.path.join(folder, name))
    if os.path.commonpath([folder, path]) != folder or path == folder:
        raise ValueError(f"{what}: {name!r} would lead outside {folder}")
    return path


def output_folder(path, what: str) -> str:
    """Create the folder ``path`` (and its parents) if missing and return it; a path the system refuses
    (under a file, in /proc, no permission, a file of that name) is a ``ValueError`` naming ``what``."""
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{what}: cannot create the folder {path!r} ({e.strerror or e}); choose another "
                         f"folder") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: the folder {path!r} is not writable; choose another folder")
    return path


@contextlib.contextmanager
def temporary_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path`` for a writer that needs a file name (an encoder, a zip);
    when the block succeeds it is renamed to ``path``, on any error (or Ctrl-C) it is removed and
    ``path`` is left as it was. ``suffix`` keeps an extension a writer looks at (e.g. '.mp4')."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=f".tmp{suffix}", dir=folder)
    try:
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
