"""``python -m ganops_models.style_mixing``: Draw a style-mixing grid (see :mod:`ganops_models.tools.style_mixing`)."""
import sys

from ganops_models.tools.style_mixing import main

if __name__ == "__main__":
    sys.exit(main())
