"""``python -m ganops_models.explore``: explore a network live in the browser; ``show(net)`` in a notebook
(see :mod:`ganops_models.tools.explore`)."""
import sys

from ganops_models.tools.explore import main, show

__all__ = ["main", "show"]

if __name__ == "__main__":
    sys.exit(main())
