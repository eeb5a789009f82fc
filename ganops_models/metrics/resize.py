"""Input pipelines of the FID references: uint8 images [N,C,H,W] -> float32 [N,3,299,299] in the
range the Inception network expects.

  'tf'          TensorFlow 1.x bilinear resize (align_corners=False: source = dst * in/out, no
                half-pixel offset) of the 0..255 values, then (x - 128) / 128.  This is the graph of
                the original TTUR FID and what torch-fidelity and StyleGAN2-ADA's Inception compute;
                numbers match torch-fidelity / StyleGAN2-ADA.
  'pytorch-fid' x / 255, torch bilinear resize (half-pixel, align_corners=False), then 2x - 1;
                numbers match pytorch-fid.
  'clean'       clean-fid: each channel resized as a float32 PIL image with bicubic filtering
                (on the CPU), then (x - 128) / 128; numbers match clean-fid's mode="clean".
All three coincide up to the normalisation when the images are already 299x299.
"""
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SIZE = 299
RESIZE_MODES = ("tf", "pytorch-fid", "clean")


def check_mode(resize: str) -> str:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize: expected one of {RESIZE_MODES}, got {resize!r}")
    return resize


def _tf1_positions(in_size: int, out_size: int, device):
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    pos = torch.arange(out_size, dtype=torch.float32) * scale
    lo = pos.long()
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo.to(device), hi.to(device), (pos - lo.float()).to(device)


def _size(size):
    return (SIZE, SIZE) if size is None else size


def resize_bilinear_tf1(x: torch.Tensor, size=None) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)`` of float [N,C,H,W] (float32 positions)
    to size (H, W) (default 299x299)."""
    size = _size(size)
    ylo, yhi, dy = _tf1_positions(x.shape[2], size[0], x.device)
    xlo, xhi, dx = _tf1_positions(x.shape[3], size[1], x.device)
    top, bottom = x[:, :, ylo, :], x[:, :, yhi, :]
    rows0 = top[..., xlo] + (top[..., xhi] - top[..., xlo]) * dx
    rows1 = bottom[..., xlo] + (bottom[..., xhi] - bottom[..., xlo]) * dx
    return rows0 + (rows1 - rows0) * dy.view(-1, 1)


def resize_bicubic_pil(x: torch.Tensor, size=None) -> torch.Tensor:
    """clean-fid's resize: every channel as a float32 ('F') PIL image, bicubic, to size (H, W)
    (default 299x299); returns float32 on x's device."""
    size = _size(size)
    arr = x.detach().to("cpu", torch.float32).numpy()
    out = np.empty((arr.shape[0], arr.shape[1], size[0], size[1]), dtype=np.float32)
    for n in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            img = Image.fromarray(arr[n, c], mode="F").resize((size[1], size[0]), resample=Image.BICUBIC)
            out[n, c] = np.asarray(img)
    return torch.from_numpy(out).to(x.device)


def to_rgb_uint8(images: torch.Tensor, what: str = "images") -> torch.Tensor:
    """Validate a uint8 [N,1|3,H,W] batch; grayscale is repeated to 3 channels."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"{what}: expected dtype torch.uint8 (values 0..255), got {images.dtype}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{what}: expected shape [N, 3 or 1, H, W], got {tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def preprocess(images: torch.Tensor, resize: str = "tf") -> torch.Tensor:
    """uint8 [N,C,H,W] -> float32 [N,3,299,299] as the chosen reference feeds its Inception."""
    check_mode(resize)
    images = to_rgb_uint8(images)
    if resize == "pytorch-fid":
        x = F.interpolate(images.float().div(255), size=_size(None), mode="bilinear", align_corners=False)
        return 2 * x - 1
    if resize == "tf":
        x = resize_bilinear_tf1(images.float())
    else:
        x = resize_bicubic_pil(images)
    return (x - 128) / 128
