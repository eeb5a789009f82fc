"""Where ganops_models keeps generated files that outlive a run (built-in dataset, metric statistics)."""
import os


def cache_root() -> str:
    """$GANOPS_CACHE, else ~/.cache/ganops."""
    return os.environ.get("GANOPS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ganops")
