"""Metric names: ``fid``, ``kid``, ``swd`` optionally followed by a count ``<N>k`` and ``_full``.

  fid50k_full  FID, 50,000 generated images vs. ALL real images
  fid10k       FID, 10,000 generated vs. the first 10,000 real images
  kid50k_full  KID likewise; swd16k / swd as SWD (default count 8k; SWD always uses equal-size
               sets, capped by the real set size)
  fid / kid    count left to the caller (CLI: all fake images or --num; training: 50k), real: all
  none         no metrics (only alone)
Comma-separated lists are accepted: "fid50k_full,kid50k_full,swd".
"""
import re
from dataclasses import dataclass

KINDS = ("fid", "kid", "swd")
DEFAULT_SWD_COUNT = 8192
_PATTERN = re.compile(r"^(fid|kid|swd)(?:(\d+)k)?(_full)?$")


@dataclass(frozen=True)
class MetricSpec:
    """One requested metric: ``num`` generated images (None: caller decides), ``max_real`` real images (None: all)."""
    name: str
    kind: str
    num: int | None
    max_real: int | None


def parse_metric(name: str) -> MetricSpec:
    m = _PATTERN.match(name.strip())
    if not m:
        raise ValueError(f"metrics: unknown metric {name!r}; expected fid|kid|swd with an optional count "
                         f"and suffix, e.g. fid50k_full, kid10k, swd, or 'none'")
    kind, count, full = m.group(1), m.group(2), m.group(3) is not None
    num = int(count) * 1000 if count is not None else None
    if num == 0:
        raise ValueError(f"metrics: {name!r} asks for 0 images")
    if kind == "swd" and num is None:
        num = DEFAULT_SWD_COUNT
    max_real = None if (full or num is None or kind == "swd") else num
    return MetricSpec(name.strip(), kind, num, max_real)


def parse_metrics(names) -> list[MetricSpec]:
    """Comma-separated string or list of names -> specs; 'none' (alone) or '' -> []."""
    if isinstance(names, str):
        names = names.split(",")
    names = [n.strip() for n in names if n.strip()]
    if names == ["none"]:
        return []
    if "none" in names:
        raise ValueError(f"metrics: 'none' cannot be combined with other metrics, got {names}")
    specs = [parse_metric(n) for n in names]
    dup = {s.name for s in specs if sum(t.name == s.name for t in specs) > 1}
    if dup:
        raise ValueError(f"metrics: listed more than once: {sorted(dup)}")
    return specs
