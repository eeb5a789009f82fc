"""``python -m ganops_models.cluster``: Curate a dataset: near-duplicates and clusters (see :mod:`ganops_models.tools.cluster`)."""
import sys

from ganops_models.tools.cluster import main

if __name__ == "__main__":
    sys.exit(main())
