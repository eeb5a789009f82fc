"""The CSV files of curation: ``OUT.duplicates.csv`` (kept,dropped,distance) and ``clusters.csv``
(path,cluster); paths are relative to the source, '/'-separated. A file name that is not valid UTF-8
is written as its bytes (surrogate escapes), so that the CSV names the file exactly and reads back."""
import csv
import io
from typing import Dict, Iterable, List, Set, Tuple

from ganops_models.files import atomic_write, regular_file
from ganops_models.errors import DatasetError

DUPLICATES_HEADER = ("kept", "dropped", "distance")
CLUSTERS_HEADER = ("path", "cluster")


def write_csv(path: str, header, rows: Iterable) -> None:
    """Atomically write ``header`` and ``rows`` as CSV."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue().encode("utf-8", "surrogateescape"))


def duplicates_path(dest: str) -> str:
    """``OUT.zip`` -> ``OUT.duplicates.csv``; a folder ``OUT`` -> ``OUT.duplicates.csv`` beside it."""
    base = dest.rstrip("/\\")
    if base.lower().endswith(".zip"):
        base = base[:-4]
    return base + ".duplicates.csv"


def read_clusters(path: str) -> Dict[str, int]:
    """{path: cluster} from a clusters.csv; DatasetError naming the problem for anything else."""
    try:
        with open(regular_file(path, "--clusters"), newline="", encoding="utf-8", errors="surrogateescape") as fh:
            rows = list(csv.reader(fh))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"--clusters {path!r} cannot be read ({exc}); make it with "
                           f"`python -m ganops_models.cluster`") from None
    if not rows or tuple(rows[0]) != CLUSTERS_HEADER:
        raise DatasetError(f"--clusters {path!r} is not a clusters.csv: its first line must be 'path,cluster'")
    table = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[1].strip().lstrip("-").isdigit():
            raise DatasetError(f"--clusters {path!r} line {line}: expected 'path,cluster' with an integer cluster, "
                               f"got {row!r}")
        table[row[0]] = int(row[1])
    return table


def parse_keep(text: str) -> Set[int]:
    """'0,3' -> {0, 3}."""
    try:
        keep = {int(v) for v in text.split(",") if v.strip()}
    except ValueError:
        raise DatasetError(f"--keep-clusters must be cluster numbers separated by commas (e.g. 0,3), "
                           f"got {text!r}") from None
    if not keep:
        raise DatasetError("--keep-clusters is empty; name at least one cluster (e.g. 0,3)")
    return keep


def select_clusters(names: List[str], table: Dict[str, int], keep: Set[int], csv_path: str) -> Tuple[List[str], int]:
    """(names in a kept cluster, in source order; number of source images the CSV does not list)."""
    unknown = sorted(keep - set(table.values()))
    if unknown:
        raise DatasetError(f"--keep-clusters names cluster(s) {unknown} that {csv_path!r} does not have "
                           f"(it has {sorted(set(table.values()))})")
    present = set(names)
    missing = [p for p in table if p not in present]
    if len(missing) == len(table):
        raise DatasetError(f"none of the paths in {csv_path!r} is an image of this --source (e.g. {missing[0]!r}); "
                           f"use the CSV made from the same source")
    return [n for n in names if table.get(n) in keep], sum(1 for n in names if n not in table)
