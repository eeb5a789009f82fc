"""``python -m ganops [--json]``: what is built and which backend each op uses."""
import sys

from ._diagnostics import main

sys.exit(main())
