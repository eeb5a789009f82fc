"""``python -m ganops_models.export``: Export a generator to ONNX (see :mod:`ganops_models.tools.export`)."""
import sys

from ganops_models.tools.export import main

if __name__ == "__main__":
    sys.exit(main())
