"""Where image files come from: a folder (searched recursively) or a zip archive.

A source lists image files by their relative path ('a/b/img.png', '/'-separated, sorted), opens one
as a binary file object and reads the optional ``dataset.json`` next to them. Sources are picklable
(DataLoader workers): a zip is (re)opened lazily in each process.

:meth:`listing` returns the names and, as ``[(name, reason)]``, every image-named path it leaves out,
so that nothing is dropped without a word:

- folders: symlinks are followed, but each real folder and each real file (device, inode) is read
  once: a symlink loop or a second link to a folder or file is reported, not walked again; anything
  but a regular file (a FIFO, a device, a socket, a broken link) is reported with its kind and never
  opened (:meth:`FolderSource.open` also refuses one that appears later, without blocking on it);
- zips: each entry's declared size is checked before it is read; backslashes in entry names
  (zips made on Windows) are read as '/'; entries that share a name are read once: the last one, as
  unzip leaves it, and the others are reported;
- both: a file larger than :data:`MAX_FILE_BYTES` is reported and never read.

Hidden files and folders (name starting with '.') and files without an image extension are not
images of the dataset and are passed over. Names that are not valid UTF-8 are kept as Python keeps
them (surrogate escapes, so they open again) and shown escaped by :func:`shown`.
"""
import io
import json
import os
import stat
import zipfile
from typing import List, Optional, Tuple

from ganops_models.errors import DatasetError
from ganops_models.files import file_kind, regular_file

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
LABELS_FILE = "dataset.json"
# The largest image Pillow decodes without a decompression-bomb warning (Image.MAX_IMAGE_PIXELS), and
# the largest file read for one image: that many pixels stored uncompressed at 4 bytes each (~358 MB).
MAX_IMAGE_PIXELS = 89_478_485
MAX_FILE_BYTES = 4 * MAX_IMAGE_PIXELS

Skipped = List[Tuple[str, str]]


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def shown(name: str) -> str:
    """``name`` quoted for a message as Python writes a string, but with the bytes of a name that is not
    UTF-8 (surrogate escapes) as \\xNN: 'caf\\xe9.png', 'new\\nline.png'."""
    body = "".join(f"\\x{ord(c) - 0xDC00:02x}" if "\udc80" <= c <= "\udcff" else repr(c)[1:-1] for c in name)
    return f"'{body}'"


def _too_large(size: int) -> str:
    return (f"{size} bytes, more than the {MAX_FILE_BYTES} bytes allowed for one image file "
            f"(an uncompressed {MAX_IMAGE_PIXELS}-pixel image)")


class FolderSource:
    """Image files under a directory, recursively (see the module docstring)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.name = os.path.basename(self.root.rstrip(os.sep))

    def list_images(self) -> List[str]:
        return self.listing()[0]

    def listing(self) -> Tuple[List[str], Skipped]:
        """(sorted image names, [(name, reason)] of the image-named paths left out)."""
        names, skipped = [], []
        root_stat = os.stat(self.root)
        seen_dirs = {(root_stat.st_dev, root_stat.st_ino): "."}
        seen_files = {}
        stack = [""]
        while stack:
            rel = stack.pop()
            folder = os.path.join(self.root, *rel.split("/")) if rel else self.root
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                skipped.append((rel + "/", f"the folder cannot be listed ({exc.strerror})"))
                continue
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                name = f"{rel}/{entry.name}" if rel else entry.name
                reason = self._check(entry, name, seen_dirs, seen_files, subfolders)
                if reason is not None:
                    skipped.append((name, reason))
                elif _is_image(entry.name) and not entry.is_dir():
                    names.append(name)
            stack.extend(reversed(subfolders))
        return sorted(names), skipped

    @staticmethod
    def _check(entry, name, seen_dirs, seen_files, subfolders) -> Optional[str]:
        """Why ``entry`` is left out (None: it is read, or it is a folder queued in ``subfolders``,
        or it is not an image)."""
        try:
            st = os.stat(entry.path)   # follows symlinks
        except OSError as exc:
            if not _is_image(entry.name):
                return None
            what = "a broken symbolic link" if entry.is_symlink() else "it cannot be read"
            return f"{what} ({exc.strerror})"
        key = (st.st_dev, st.st_ino)
        if stat.S_ISDIR(st.st_mode):
            if key in seen_dirs:
                return (f"a link to the folder {shown(seen_dirs[key])}, which is read once "
                        f"(a symbolic link loop, or a second link to it)")
            seen_dirs[key] = name
            subfolders.append(name)
            return None
        if not _is_image(entry.name):
            return None
        if not stat.S_ISREG(st.st_mode):
            return f"{file_kind(entry.path)}, not a regular file"
        if key in seen_files:
            return f"the same file as {shown(seen_files[key])} (a link to it), which is read once"
        if st.st_size > MAX_FILE_BYTES:
            return _too_large(st.st_size)
        seen_files[key] = name
        return None

    def open(self, name: str):
        """The file ``name`` opened for reading; DatasetError for anything but a regular file of at
        most MAX_FILE_BYTES (checked on the open file, which never blocks: a FIFO is refused)."""
        return open(os.path.join(self.root, *name.split("/")), "rb", opener=_regular_opener)

    def read_json(self, name: str = LABELS_FILE) -> Optional[dict]:
        path = os.path.join(self.root, name)
        if not os.path.isfile(path):
            return None
        with self.open(name) as fh:
            return _parse_json(fh.read().decode("utf-8"), path)


class ZipSource:
    """Image files inside a zip archive (any folder depth; see the module docstring)."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.name = os.path.splitext(os.path.basename(self.path))[0]
        self._zip = None
        self._pid = None
        self._entries = None

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
            self._entries = None
        return self._zip

    def __getstate__(self):
        return {"path": self.path, "name": self.name, "_zip": None, "_pid": None, "_entries": None}

    def list_images(self) -> List[str]:
        return self.listing()[0]

    def listing(self) -> Tuple[List[str], Skipped]:
        """(sorted image names, [(name, reason)] of the image entries left out)."""
        entries, skipped = {}, []
        infos = [i for i in self._archive().infolist() if not i.is_dir() and _is_image(i.filename)]
        for info in infos:
            name = info.filename.replace("\\", "/")
            if any(part.startswith(".") for part in name.split("/")):
                continue
            if info.file_size > MAX_FILE_BYTES:
                skipped.append((name, f"the entry declares {_too_large(info.file_size)}; it is not read"))
                continue
            if name in entries:
                skipped.append((name, "another entry of the zip has the same name; only the last one is read, "
                                      "as unzip would leave it"))
            entries[name] = info
        self._entries = entries
        return sorted(entries), skipped

    def open(self, name: str):
        """The entry ``name`` as a binary file object, read whole; it must declare, and hold, at most
        MAX_FILE_BYTES."""
        if self._entries is None or self._pid != os.getpid():
            self.listing()
        info = self._entries.get(name)
        if info is None:
            raise DatasetError(f"{shown(name)} is not an image entry of {self.path!r} (or was left out)")
        with self._archive().open(info) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise DatasetError(f"{shown(name)} holds more than {MAX_FILE_BYTES} bytes; it is not read")
        return io.BytesIO(data)

    def read_json(self, name: str = LABELS_FILE) -> Optional[dict]:
        try:
            info = self._archive().getinfo(name)
        except KeyError:
            return None
        if info.file_size > MAX_FILE_BYTES:
            raise DatasetError(f"{self.path}:{name} declares {_too_large(info.file_size)}; it is not read")
        return _parse_json(self._archive().read(info).decode("utf-8"), f"{self.path}:{name}")


def _regular_opener(path: str, flags: int) -> int:
    """``os.open`` for :func:`open` that refuses (DatasetError) anything but a regular file of at most
    MAX_FILE_BYTES, without blocking on a FIFO."""
    fd = os.open(path, flags | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DatasetError(f"{shown(path)} is {file_kind(path)}, not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise DatasetError(f"{shown(path)} is {_too_large(st.st_size)}")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _parse_json(text: str, where: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where} is not valid JSON ({exc}); fix or delete it") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{where} must hold a JSON object like {{\"labels\": [[\"path.png\", 0], ...]}}")
    return data


def open_source(path: str):
    """A FolderSource or ZipSource for ``path``; DatasetError if it is missing or neither."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"data path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if os.path.isdir(path):
        return FolderSource(path)
    try:
        regular_file(path, "data path")
    except FileNotFoundError:
        raise DatasetError(f"data path {path!r} does not exist; pass a folder of images, a .zip of images, or a "
                           "dataset made by `python -m ganops_models.dataset_tool` (omit --data for the built-in "
                           "one)") from None
    except ValueError as exc:
        raise DatasetError(f"{exc}; pass a folder of images or a .zip") from None
    if zipfile.is_zipfile(path):
        return ZipSource(path)
    raise DatasetError(f"data path {path!r} is a file but not a zip archive; pass a folder of images or a .zip")
