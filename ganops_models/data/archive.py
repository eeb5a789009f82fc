"""Writing images into dataset zips: PNG-encoded entries with a fixed timestamp, so the same images
give the same bytes."""
import zipfile


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def add_entry(archive: zipfile.ZipFile, name: str, data) -> None:
    """Store ``data`` (bytes or str) as ``name`` with the fixed timestamp."""
    archive.writestr(zipfile.ZipInfo(name, _ZIP_DATE), data)
