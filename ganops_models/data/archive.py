"""Writing images into dataset zips: PNG-encoded entries with a fixed timestamp, so the same images
give the same bytes."""
import io
import zipfile

import numpy as np
from PIL import Image

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def png_bytes(arr: np.ndarray) -> bytes:
    """PNG encoding of an RGB uint8 array [H, W, 3]."""
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def add_entry(archive: zipfile.ZipFile, name: str, data) -> None:
    """Store ``data`` (bytes or str) as ``name`` with the fixed timestamp."""
    archive.writestr(zipfile.ZipInfo(name, _ZIP_DATE), data)
