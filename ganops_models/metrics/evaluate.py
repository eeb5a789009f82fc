"""Compute FID / KID / SWD between generated (or fake-folder) images and a real image set.

generator_fn contract: ``generator_fn(n: int, seed: int) -> torch.Tensor`` uint8 [n, 3 (or 1), H, W]
on any device, deterministic in ``seed``.  ``evaluate`` asks for consecutive batches with seeds
``seed, seed + 1, ...`` (so the image set depends on ``seed`` and ``batch_size``).  Build one from
a network with ``make_generator_fn``.  Instead of a callable, ``generator_fn`` may also be a
folder/zip path or an ImageDataset of fake images (the CLI's --fake).

Counts: see ``names.py``.  ``num_gen`` (if given) replaces every metric's generated-image count;
a plain ``fid``/``kid`` uses all fake images of a folder, or 50,000 from a generator.  Generated
images are made once and shared by all metrics (each takes the first images it needs); real
Inception statistics are cached (``cache.py``).  FID uses the reference scipy recipe, except when
both sets have at most 2048 images, where the exact low-rank form is used (see ``fid.py``).

Result keys: ``<name>`` for FID/KID/SWD (KID also ``<name>/std``, SWD also ``<name>/res<R>`` per
pyramid level), e.g. {'fid50k_full': 12.3, 'kid50k_full': 0.004, 'kid50k_full/std': 0.0002,
'swd': 31.0, 'swd/res64': ...}.  Values are plain floats (SWD x 1e3, KID not scaled).
"""
import os
import time

import numpy as np
import torch

from ganops_models.metrics import cache as _cache
from ganops_models.metrics.features import InceptionFeatures, iterate_dataset, iterate_generator
from ganops_models.metrics.fid import feature_stats, fid_from_features, frechet_distance
from ganops_models.metrics.inception import FEATURE_DIM, find_weights
from ganops_models.metrics.kid import kernel_inception_distance
from ganops_models.metrics.names import parse_metrics
from ganops_models.metrics.resize import check_mode
from ganops_models.metrics.sources import fingerprint, open_images
from ganops_models.metrics.swd import SWDDescriptors, swd_from_descriptors

DEFAULT_NUM_GEN = 50000


def make_generator_fn(sample_fn, latent_fn, device, label_dim=0, labels=None):
    """generator_fn(n, seed) from a network: z = latent_fn(n, torch.Generator seeded with seed) (CPU),
    c = rows of ``labels`` [L, label_dim] drawn at random (or random one-hot classes when labels is
    None and label_dim > 0, else None), images = sample_fn(z, c) in [-1, 1] mapped to uint8 as
    StyleGAN2-ADA does: clamp(x * 127.5 + 128, 0, 255)."""
    def generator_fn(n, seed):
        gen = torch.Generator().manual_seed(int(seed))
        z = latent_fn(n, gen).to(device)
        c = None
        if labels is not None:
            table = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
            c = table[torch.randint(table.shape[0], (n,), generator=gen)].to(device)
        elif label_dim > 0:
            c = torch.nn.functional.one_hot(torch.randint(label_dim, (n,), generator=gen), label_dim).float().to(device)
        with torch.no_grad():
            images = sample_fn(z, c)
        return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return generator_fn


class _Consumer:
    """Takes the first ``limit`` images of a stream of batches."""

    def __init__(self, limit, fn):
        self.limit, self.fn = limit, fn

    def offer(self, start, images):
        take = min(images.shape[0], self.limit - start)
        if take > 0:
            self.fn(images[:take])


def _stream(batches, consumers, total):
    start = 0
    for images in batches:
        for c in consumers:
            c.offer(start, images)
        start += images.shape[0]
    if start < total:
        raise ValueError(f"image source ended after {start} images, {total} were needed")


def _as_dataset(obj, what):
    if isinstance(obj, (str, os.PathLike)):
        return open_images(obj, what)
    if not hasattr(obj, "__getitem__") or not hasattr(obj, "__len__"):
        raise TypeError(f"{what}: expected a folder/zip path or a dataset with __len__/__getitem__, "
                        f"got {type(obj).__name__}")
    return obj


def _cached_real_stats(need_feat, cache_key, say):
    """({count: cached entry}, {count: (entry path or None, needs features, [] for features)})."""
    hits, todo = {}, {}
    cache_dir, fp, settings = cache_key if cache_key is not None else (None, None, None)
    for rc, nf in need_feat.items():
        path = None if fp is None else _cache.entry_path(cache_dir, fp, {"count": rc, **settings})
        hit = None if path is None else _cache.load(path, nf)
        if hit is not None:
            say(f"real statistics ({rc} images): cache hit {path}")
            hits[rc] = hit
        else:
            todo[rc] = (path, nf, [])
    return hits, todo


def evaluate(metric_names, generator_fn, real_dataset_or_path, device="cpu", num_gen=None, inception_path=None,
             cache_dir=None, batch_size=32, resize="tf", seed=0, log=None) -> dict:
    """Evaluate the metrics (see module docstring).  cache_dir: None -> default directory, False -> no
    cache.  log: optional callable(str) for progress messages.  Returns {} for 'none'."""
    specs = parse_metrics(metric_names)
    if not specs:
        return {}
    if num_gen is not None and (not isinstance(num_gen, int) or num_gen < 2):
        raise ValueError(f"num_gen: expected an int >= 2 or None, got {num_gen!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    check_mode(resize)
    say = log or (lambda msg: None)
    device = torch.device(device)
    real = _as_dataset(real_dataset_or_path, "real_dataset_or_path")
    fake_is_fn = callable(generator_fn) and not hasattr(generator_fn, "__getitem__")
    fake = None if fake_is_fn else _as_dataset(generator_fn, "generator_fn")
    n_real = len(real)

    def gen_count(spec):
        n = num_gen if num_gen is not None else spec.num
        if fake is not None:
            return min(n, len(fake)) if n is not None else len(fake)
        return n if n is not None else DEFAULT_NUM_GEN

    inc_specs = [s for s in specs if s.kind in ("fid", "kid")]
    swd_specs = [s for s in specs if s.kind == "swd"]
    extractor = None
    if inc_specs:
        weights = find_weights(inception_path)
        extractor = InceptionFeatures.load(weights, device, resize)

    # --- real side ---------------------------------------------------------------------------
    need_feat = {}  # real count -> whether the features themselves are needed
    for s in inc_specs:
        rc = min(s.max_real or n_real, n_real)  # few real images: keep features for the exact FID
        need_feat[rc] = need_feat.get(rc, False) or s.kind == "kid" or rc <= FEATURE_DIM
    cache_key = None
    if inc_specs and cache_dir is not False:
        cache_key = (_cache.default_cache_dir() if cache_dir is None else cache_dir, fingerprint(real),
                     {"resize": resize, "weights": _cache.weights_identity(weights)})
        if cache_key[1] is None:
            say(f"real statistics: {type(real).__name__} cannot be fingerprinted, not cached")
    real_inc, todo = _cached_real_stats(need_feat, cache_key, say)
    swd_real = {}
    swd_counts = {s.name: min(gen_count(s), n_real) for s in swd_specs}
    for s in swd_specs:
        if swd_counts[s.name] < 2:
            raise ValueError(f"{s.name}: needs at least 2 images on each side")
        swd_real[s.name] = SWDDescriptors(device, seed=seed)
    consumers = [_Consumer(rc, lambda im, acc=acc: acc.append(extractor(im).numpy()))
                 for rc, (_, _, acc) in todo.items()]
    consumers += [_Consumer(swd_counts[name], acc.feed) for name, acc in swd_real.items()]
    real_total = max([c.limit for c in consumers], default=0)
    if real_total:
        t0 = time.time()
        _stream(iterate_dataset(real, real_total, batch_size), consumers, real_total)
        say(f"real images: {real_total} processed in {time.time() - t0:.1f}s")
    for rc, (path, nf, acc) in todo.items():
        feats = np.concatenate(acc)
        mu, sigma = feature_stats(feats)
        real_inc[rc] = {"mu": mu, "sigma": sigma, "features": feats}
        if path is not None:
            _cache.store(path, mu, sigma, feats if nf else None)

    # --- generated side ----------------------------------------------------------------------
    gen_feats = []
    gen_total_inc = max([gen_count(s) for s in inc_specs], default=0)
    swd_fake = {s.name: SWDDescriptors(device, seed=seed + 1) for s in swd_specs}
    consumers = [_Consumer(gen_total_inc, lambda im: gen_feats.append(extractor(im).numpy()))] if inc_specs else []
    consumers += [_Consumer(swd_counts[name], acc.feed) for name, acc in swd_fake.items()]
    gen_total = max([c.limit for c in consumers])
    t0 = time.time()
    batches = (iterate_generator(generator_fn, gen_total, batch_size, seed) if fake is None
               else iterate_dataset(fake, gen_total, batch_size))
    _stream(batches, consumers, gen_total)
    say(f"generated images: {gen_total} processed in {time.time() - t0:.1f}s")
    gen_feats = np.concatenate(gen_feats) if gen_feats else None

    # --- metrics -----------------------------------------------------------------------------
    results = {}
    for s in specs:
        if s.kind == "swd":
            out = swd_from_descriptors(swd_real[s.name].finalize(), swd_fake[s.name].finalize(), device, seed)
            results.update({s.name + k[3:]: v for k, v in out.items()})
            continue
        r = real_inc[min(s.max_real or n_real, n_real)]
        g = gen_feats[:gen_count(s)]
        if s.kind == "fid" and "features" in r:
            results[s.name] = fid_from_features(g, r["features"])
        elif s.kind == "fid":
            results[s.name] = frechet_distance(*feature_stats(g), r["mu"], r["sigma"])
        else:
            mean, std = kernel_inception_distance(g, r["features"], device=device)
            results[s.name], results[s.name + "/std"] = mean, std
    return results
