"""``python -m ganops_models.dataset_tool``: Pack images into a dataset zip (see :mod:`ganops_models.tools.dataset_tool`)."""
import sys

from ganops_models.tools.dataset_tool import main

if __name__ == "__main__":
    sys.exit(main())
