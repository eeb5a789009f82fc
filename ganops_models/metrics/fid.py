"""Fréchet Inception Distance.

FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)) on float64 feature statistics
(mean, unbiased covariance).  method='scipy' is the reference recipe of pytorch-fid /
torch-fidelity / clean-fid: scipy.linalg.sqrtm(S1 S2); if the result is not finite, retry with
S + eps*I; a complex result must have imaginary diagonal < 1e-3 and its real part is used.
method='eig' is torch-fidelity's (>= 0.4) recipe: tr((S1 S2)^(1/2)) = sum Re sqrt(eigvals(S1 S2)).
method='lowrank' works on the features: with A = (F - mean) / sqrt(N - 1), S = A^T A and
tr((S1 S2)^(1/2)) = nuclear norm of A1 A2^T (an exact identity), computed from N1 x N2 matrices
with no D x D decomposition.  fid_from_features(method='auto') uses it when both sets have at
most D samples (singular covariances, where scipy's sqrtm is unreliable and warns; the reference
numbers are then not meaningful anyway), and the reference 'scipy' recipe otherwise.
"""
import numpy as np
import scipy.linalg


def feature_stats(features) -> tuple:
    """(mu [D], sigma [D,D]) in float64 of features [N,D], N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features: expected a [N, D] array with N >= 2, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features: contain NaN or Inf")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _check_stats(mu, sigma, name):
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{name}: expected mu [D] and sigma [D, D], got {mu.shape} and {sigma.shape}")
    return mu, sigma


def trace_sqrt_product(sigma1, sigma2, eps=1e-6, method="scipy") -> float:
    """tr((sigma1 sigma2)^(1/2)) with the reference's regularisation (see module docstring)."""
    if method == "eig":
        eig = np.linalg.eigvals(sigma1 @ sigma2).astype(np.complex128)
        return float(np.sqrt(eig).real.sum())
    if method != "scipy":
        raise ValueError(f"method: expected 'scipy' or 'eig', got {method!r}")
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has a significant imaginary part "
                             f"(max {np.abs(covmean.imag).max():.3g}); the statistics are degenerate")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6, method="scipy") -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (float64)."""
    mu1, sigma1 = _check_stats(mu1, sigma1, "mu1/sigma1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "mu2/sigma2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu2: dimension {mu2.shape[0]} differs from mu1's {mu1.shape[0]}")
    diff = mu1 - mu2
    tr = trace_sqrt_product(sigma1, sigma2, eps, method)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr)


def frechet_distance_lowrank(features1, features2) -> float:
    """Exact FID from features via the nuclear norm of A1 A2^T (see module docstring)."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    for name, f in (("features1", f1), ("features2", f2)):
        if f.ndim != 2 or f.shape[0] < 2 or not np.isfinite(f).all():
            raise ValueError(f"{name}: expected a finite [N, D] array with N >= 2, got shape {f.shape}")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features2: dimension {f2.shape[1]} differs from features1's {f1.shape[1]}")
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a1 = (f1 - mu1) / np.sqrt(f1.shape[0] - 1)
    a2 = (f2 - mu2) / np.sqrt(f2.shape[0] - 1)
    tr = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()
    diff = mu1 - mu2
    return float(diff @ diff + (a1 * a1).sum() + (a2 * a2).sum() - 2 * tr)


def fid_from_features(features1, features2, eps=1e-6, method="auto") -> float:
    """FID of two feature sets [N1,D], [N2,D]; method 'auto', 'lowrank', 'scipy' or 'eig'."""
    if method == "auto":
        dim = np.shape(features1)[-1]
        method = "lowrank" if len(features1) <= dim and len(features2) <= dim else "scipy"
    if method == "lowrank":
        return frechet_distance_lowrank(features1, features2)
    return frechet_distance(*feature_stats(features1), *feature_stats(features2), eps=eps, method=method)
