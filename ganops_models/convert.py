"""``python -m ganops_models.convert``: Convert an NVIDIA pickle into a ganops checkpoint (see :mod:`ganops_models.tools.convert`)."""
import sys

from ganops_models.tools.convert import main

if __name__ == "__main__":
    sys.exit(main())
