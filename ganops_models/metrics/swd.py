"""Sliced Wasserstein distance on Laplacian-pyramid patches (ProGAN, Karras et al. 2018).

Per image (uint8 [N,3,H,W] taken as float32 0..255): a Laplacian pyramid with cv2.pyrDown/pyrUp's
5x5 binomial filter and mirror borders, one level per resolution H, H/2, ... >= 16 (the coarsest
level is the Gaussian residual).  From each level 128 random 7x7x3 patches per image.  Per set and
level, descriptors are normalised per channel (mean 0, std 1 over all patches and pixels) and
flattened to 147-d.  SWD between two sets = mean over 4 repeats x 128 random unit directions of
the mean |sorted(A d) - sorted(B d)|, times 1e3.  Reported per resolution and averaged.  Needs no
pretrained network.  Randomness comes from seeded torch generators (deterministic per seed).
"""
import torch
import torch.nn.functional as F

from ganops_models.metrics.precision import full_fp32

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
_GAUSS = (_BINOMIAL[:, None] * _BINOMIAL[None, :]) / 256.0


def _blur(x, gain):
    c = x.shape[1]
    kernel = (_GAUSS * gain).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def pyr_down(x):
    """cv2.pyrDown: 5x5 binomial blur with mirror borders, keep even pixels."""
    return _blur(x, 1.0)[:, :, ::2, ::2]


def pyr_up(x):
    """cv2.pyrUp: zero-stuff to 2x, blur with 4 x the binomial filter, mirror borders."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0)


def laplacian_pyramid(x, num_levels):
    """List of num_levels tensors: band-pass levels (finest first), the last one the low-pass residual."""
    levels = [x]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1])
    return levels


def resolutions_for(height, width):
    """Pyramid resolutions used for images of this size: min(H,W), /2, ... while >= 16."""
    res, out = min(height, width), []
    while res >= MIN_RESOLUTION:
        out.append(res)
        res //= 2
    if not out:
        raise ValueError(f"images: SWD needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION}, got {height}x{width}")
    return out


def sample_patches(level, per_image, generator):
    """[N*per_image, C, 7, 7] patches fully inside the level, at random centres."""
    n, c, h, w = level.shape
    r = NHOOD_SIZE // 2
    count = n * per_image
    ys = torch.randint(r, h - r, (count,), generator=generator).to(level.device)
    xs = torch.randint(r, w - r, (count,), generator=generator).to(level.device)
    img = torch.arange(n, device=level.device).repeat_interleave(per_image)
    offs = torch.arange(-r, r + 1, device=level.device)
    yy = (ys[:, None] + offs)[:, :, None]  # [count, 7, 1]
    xx = (xs[:, None] + offs)[:, None, :]  # [count, 1, 7]
    patches = level[img[:, None, None], :, yy, xx]  # [count, 7, 7, C]
    return patches.permute(0, 3, 1, 2)


def normalize_descriptors(desc):
    """Per-channel standardisation over all patches and pixels, flattened to [M, C*7*7]."""
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(a, b, generator, dir_repeats=DIR_REPEATS, dirs_per_repeat=DIRS_PER_REPEAT):
    """Mean over random unit directions of the mean |sorted projections of a - of b|; a, b [M, D]."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"descriptors: expected two [M, D] sets of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    results = []
    for _ in range(dir_repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=generator, dtype=torch.float64)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(a)
        pa, _ = torch.sort(a @ dirs, dim=0)
        pb, _ = torch.sort(b @ dirs, dim=0)
        results.append((pa - pb).abs().mean())
    return float(torch.stack(results).mean())


class SWDDescriptors:
    """Accumulates raw pyramid patches of a stream of uint8 batches; ``finalize()`` gives the
    normalised descriptors {resolution: [M, 147]} on the CPU."""

    def __init__(self, device="cpu", seed=0, nhoods_per_image=NHOODS_PER_IMAGE):
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.per_image = nhoods_per_image
        self.resolutions = None
        self.chunks = None

    def feed(self, images):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        res = resolutions_for(images.shape[2], images.shape[3])
        if self.resolutions is None:
            self.resolutions, self.chunks = res, [[] for _ in res]
        elif res != self.resolutions:
            raise ValueError(f"images: resolution {tuple(images.shape[2:])} differs from earlier batches")
        with full_fp32():
            levels = laplacian_pyramid(images.to(self.device, torch.float32), len(res))
        for chunks, level in zip(self.chunks, levels):
            chunks.append(sample_patches(level, self.per_image, self.generator).cpu())

    def finalize(self):
        if self.chunks is None:
            raise ValueError("images: no images were fed")
        return {r: normalize_descriptors(torch.cat(c)) for r, c in zip(self.resolutions, self.chunks)}


def swd_from_descriptors(real, fake, device="cpu", seed=0):
    """{'swd/res<R>': SWD x 1e3 per resolution, 'swd': their mean} of two ``finalize()`` results."""
    if sorted(real) != sorted(fake):
        raise ValueError(f"fake: pyramid resolutions {sorted(fake)} differ from real {sorted(real)} "
                         "(real and generated images must have the same size)")
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for res in real:
        a, b = real[res], fake[res]
        m = min(a.shape[0], b.shape[0])  # equal-size sets: keep a random subset of the larger one
        a = a[torch.randperm(a.shape[0], generator=generator)[:m]] if a.shape[0] > m else a
        b = b[torch.randperm(b.shape[0], generator=generator)[:m]] if b.shape[0] > m else b
        with full_fp32():
            out[f"swd/res{res}"] = 1e3 * sliced_wasserstein(a.to(device), b.to(device), generator)
    out["swd"] = sum(out.values()) / len(real)
    return out
