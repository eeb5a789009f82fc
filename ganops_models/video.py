"""``python -m ganops_models.video``: Render a latent-interpolation video (see :mod:`ganops_models.tools.video`)."""
import sys

from ganops_models.tools.video import main

if __name__ == "__main__":
    sys.exit(main())
