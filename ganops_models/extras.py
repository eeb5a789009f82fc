"""Optional features and the pip extra that installs each one's dependency.

``pip install ganops`` installs what ``python -m ganops_models.train`` needs; curation (``cluster``,
``dataset_tool --dedupe``/``--report``) needs ``ganops[curation]`` (scikit-learn, imagehash) and MP4
videos need ``ganops[video]`` (imageio-ffmpeg), the live explore page ``ganops[explore]`` (starlette,
uvicorn), safetensors networks ``ganops[safetensors]``, ``export --format onnx`` ``ganops[onnx]`` (onnx,
onnxscript) and the experiment trackers ``ganops[wandb]`` and ``ganops[mlflow]`` (mlflow-skinny). The
README's install command (``.[dev]``) has them all.
"""
import importlib
from types import ModuleType

from ganops_models.errors import MissingExtraError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{feature} needs the Python package {module.split('.')[0]!r}, which is not "
                                f"installed: pip install 'ganops[{extra}]'") from None
