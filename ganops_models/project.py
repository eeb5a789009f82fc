"""``python -m ganops_models.project``: Project an image into a network's latent space (see :mod:`ganops_models.tools.project`)."""
import sys

from ganops_models.tools.project import main

if __name__ == "__main__":
    sys.exit(main())
