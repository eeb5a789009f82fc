"""Where image files come from: a folder (searched recursively) or a zip archive.

A source lists image files by their relative path ('a/b/img.png', '/'-separated, sorted), opens one
as a binary file object and reads the optional ``dataset.json`` next to them. Sources are picklable
(DataLoader workers): a zip is (re)opened lazily in each process.
"""
import io
import json
import os
import zipfile
from typing import List, Optional

from ganops_models.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
LABELS_FILE = "dataset.json"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


class FolderSource:
    """Image files under a directory, recursively (hidden files and folders are ignored)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.name = os.path.basename(self.root.rstrip(os.sep))

    def list_images(self) -> List[str]:
        names = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, self.root)
            for fname in filenames:
                if fname.startswith(".") or not _is_image(fname):
                    continue
                path = fname if rel == "." else os.path.join(rel, fname)
                names.append(path.replace(os.sep, "/"))
        return sorted(names)

    def open(self, name: str):
        return open(os.path.join(self.root, *name.split("/")), "rb")

    def read_json(self, name: str = LABELS_FILE) -> Optional[dict]:
        path = os.path.join(self.root, name)
        if not os.path.isfile(path):
            return None
        with open(path, "r", encoding="utf-8") as fh:
            return _parse_json(fh.read(), path)


class ZipSource:
    """Image files inside a zip archive (any folder depth)."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.name = os.path.splitext(os.path.basename(self.path))[0]
        self._zip = None
        self._pid = None

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._zip

    def __getstate__(self):
        return {"path": self.path, "name": self.name, "_zip": None, "_pid": None}

    def list_images(self) -> List[str]:
        names = [n for n in self._archive().namelist() if not n.endswith("/") and _is_image(n)]
        return sorted(n for n in names if not any(part.startswith(".") for part in n.split("/")))

    def open(self, name: str):
        return io.BytesIO(self._archive().read(name))

    def read_json(self, name: str = LABELS_FILE) -> Optional[dict]:
        try:
            raw = self._archive().read(name)
        except KeyError:
            return None
        return _parse_json(raw.decode("utf-8"), f"{self.path}:{name}")


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
    if os.path.isfile(path):
        if zipfile.is_zipfile(path):
            return ZipSource(path)
        raise DatasetError(f"data path {path!r} is a file but not a zip archive; pass a folder of images or a .zip")
    raise DatasetError(f"data path {path!r} does not exist; pass a folder of images, a .zip of images, or a "
                       "dataset made by `python -m ganops_models.dataset_tool` (omit --data for the built-in one)")
