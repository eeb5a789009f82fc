"""The two sides of a metric from the command line: the network (``--network`` checkpoint, run
folder or 'latest', through :mod:`ganops_models.network_loader`) and the real images, which are
``--real`` or, as in NVIDIA's calc_metrics, the network's own training data (its ``--data``, or the
built-in dataset, with its mirroring), at the resolution of the generated images."""
import os

from .. import builtin_dataset
from ..data import ImageDataset, reconfigure
from ..network_loader import LoadedNetwork, load_network
from ..training.checkpoint import CheckpointError
from .sources import open_images


def load_network_for_metrics(spec: str, device, log) -> LoadedNetwork:
    """The network of ``--network``; says which checkpoint a folder or 'latest' stands for."""
    try:
        net = load_network(spec, device)
    except CheckpointError as err:
        raise ValueError(f"--network: {err}") from None
    if os.path.abspath(net.path) != os.path.abspath(spec):
        log(f"network: {net.path}")
    return net


def _training_data(net: LoadedNetwork) -> ImageDataset:
    """The data the network was trained on, opened as its run opened it (mirroring included)."""
    if net.checkpoint is None:
        raise ValueError(f"{net.path} is an NVIDIA pickle, which does not say where its training images are; "
                         f"pass --real with them")
    options = net.checkpoint["options"]
    path = options.get("data")
    if path is None:
        path = builtin_dataset.ensure()
    elif not os.path.exists(path):
        raise ValueError(f"the network was trained on {path!r}, which is not found from here; pass --real with "
                         f"the training images")
    data = open_images(path, "training data")
    return reconfigure(data, mirror=bool(options.get("mirror"))) if options.get("mirror") else data


def open_real_images(path, net, resolution, log) -> ImageDataset:
    """``--real`` (or, when None, ``net``'s training data) at ``resolution`` (H, W); a resize is reported."""
    real = _training_data(net) if path is None else open_images(path, "--real")
    if path is None:
        log(f"real images: the network's training data, {real.name} ({real.num_images} images)")
    if tuple(real.resolution) != tuple(resolution):
        (h, w), (rh, rw) = resolution, real.resolution
        log(f"real images are {rw}x{rh}, the generated ones {w}x{h}: resizing the real images to {w}x{h}")
        real = reconfigure(real, tuple(resolution), mirror=real.mirror)
    return real
