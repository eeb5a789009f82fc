"""``python -m ganops_models.metrics``: see :mod:`ganops_models.tools.metrics`."""
import sys

from ganops_models.tools.metrics import main

if __name__ == "__main__":
    sys.exit(main())
