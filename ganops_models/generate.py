"""``python -m ganops_models.generate``: Generate images from a network (see :mod:`ganops_models.tools.generate`)."""
import sys

from ganops_models.tools.generate import main

if __name__ == "__main__":
    sys.exit(main())
