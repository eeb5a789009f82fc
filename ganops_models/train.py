"""``python -m ganops_models.train``: Train a GAN (see :mod:`ganops_models.tools.train`)."""
import sys

from ganops_models.tools.train import main

if __name__ == "__main__":
    sys.exit(main())
