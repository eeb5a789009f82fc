"""GAN metrics: FID and KID on the FID Inception-v3 features, and SWD (ProGAN).

In training::

    from ganops_models import metrics
    gen = metrics.make_generator_fn(recipe.sample, recipe.latents, device, label_dim)
    results = metrics.evaluate("fid50k_full,kid50k_full,swd", gen, dataset, device)
    metrics.append_metrics_jsonl(run_dir / "metrics.jsonl", kimg, results)
    metrics.plot_metrics(run_dir / "metrics.jsonl", run_dir / "metrics.png")

Command line: ``python -m ganops_models.metrics --metrics fid,kid,swd --real DIR|ZIP --fake DIR|ZIP``.
"""
from ganops_models.metrics.evaluate import evaluate, make_generator_fn
from ganops_models.metrics.fid import feature_stats, fid_from_features, frechet_distance
from ganops_models.metrics.inception import FIDInceptionV3, find_weights, load_inception
from ganops_models.metrics.kid import kernel_inception_distance
from ganops_models.metrics.names import MetricSpec, parse_metrics
from ganops_models.metrics.plot import plot_metrics
from ganops_models.metrics.report import append_metrics_jsonl, read_metrics_jsonl
from ganops_models.metrics.resize import RESIZE_MODES
from ganops_models.metrics.swd import SWDDescriptors, swd_from_descriptors

__all__ = ["FIDInceptionV3", "MetricSpec", "RESIZE_MODES", "SWDDescriptors", "append_metrics_jsonl", "evaluate",
           "feature_stats", "fid_from_features", "find_weights", "frechet_distance", "kernel_inception_distance",
           "load_inception", "make_generator_fn", "parse_metrics", "plot_metrics", "read_metrics_jsonl",
           "swd_from_descriptors"]
