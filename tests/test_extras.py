"""Optional features name the extra that installs their dependency when it is missing."""
import builtins

import numpy as np
import pytest

from ganops_models.errors import USER_ERRORS, MissingExtraError
from ganops_models.extras import require


@pytest.fixture
def without(monkeypatch):
    """Make importing the given top-level packages fail, as in an environment without them."""
    def hide(*names):
        real_import = builtins.__import__

        def fake_import(name, *args, **kwargs):
            if name.split(".")[0] in names:
                raise ImportError(f"No module named {name!r}")
            return real_import(name, *args, **kwargs)
        monkeypatch.setattr(builtins, "__import__", fake_import)
        import importlib
        monkeypatch.setattr(importlib, "import_module", lambda n, *a: fake_import(n))
    return hide


def test_require_imports_what_is_there():
    assert require("json", "none", "json").dumps([1]) == "[1]"


def test_missing_extra_names_the_extra(without):
    without("sklearn", "imagehash", "imageio_ffmpeg")
    from ganops_models.curation import kmeans, scan
    from ganops_models.tools.video_io import VideoWriter
    with pytest.raises(MissingExtraError, match=r"'sklearn'.*pip install 'ganops\[curation\]'"):
        kmeans.kmeans(np.random.rand(10, 4).astype(np.float32), 2)
    with pytest.raises(MissingExtraError, match=r"'imagehash'.*pip install 'ganops\[curation\]'"):
        scan.phash(None)
    with pytest.raises(MissingExtraError, match=r"'imageio_ffmpeg'.*pip install 'ganops\[video\]'"):
        VideoWriter("x.mp4", fps=30)._open_mp4(32, 32)
    assert MissingExtraError in USER_ERRORS     # the commands report it as bad input: no traceback
