"""Kernel Inception Distance: unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3.

Over ``num_subsets`` rounds, ``m = min(max_subset_size, N1, N2)`` rows are drawn without
replacement from each set (numpy RandomState(seed).choice, first set then second, as
torch-fidelity does) and
  MMD^2_u = [sum_{i!=j} k(x_i,x_j) + sum_{i!=j} k(y_i,y_j)] / (m(m-1)) - 2 sum_{i,j} k(x_i,y_j) / m^2.
Returns (mean, std) over the subsets (std with ddof=0, as torch-fidelity).  Kernels in float64.
"""
import numpy as np
import torch


def polynomial_kernel(x, y, degree=3, coef0=1.0):
    """(x y^T / d + coef0)^degree for x [m,d], y [n,d] (torch)."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x, y, degree=3, coef0=1.0) -> float:
    """Unbiased MMD^2 of two equally sized torch sets [m,d] with the polynomial kernel."""
    m = x.shape[0]
    kxx, kyy, kxy = (polynomial_kernel(a, b, degree, coef0) for a, b in ((x, x), (y, y), (x, y)))
    off_diag = kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()
    return float(off_diag / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(features1, features2, num_subsets=100, max_subset_size=1000,
                              degree=3, coef0=1.0, seed=2020, device="cpu") -> tuple:
    """(KID mean, KID std) of feature sets [N1,D], [N2,D] (see module docstring)."""
    f1, f2 = np.asarray(features1), np.asarray(features2)
    for name, f in (("features1", f1), ("features2", f2)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"{name}: expected a [N, D] array with N >= 2, got shape {f.shape}")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features2: dimension {f2.shape[1]} differs from features1's {f1.shape[1]}")
    if num_subsets < 1 or max_subset_size < 2:
        raise ValueError(f"num_subsets >= 1 and max_subset_size >= 2 expected, got {num_subsets}, {max_subset_size}")
    m = min(max_subset_size, f1.shape[0], f2.shape[0])
    t1 = torch.as_tensor(f1, dtype=torch.float64, device=device)
    t2 = torch.as_tensor(f2, dtype=torch.float64, device=device)
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(num_subsets):
        i1 = torch.as_tensor(rng.choice(f1.shape[0], m, replace=False), device=device)
        i2 = torch.as_tensor(rng.choice(f2.shape[0], m, replace=False), device=device)
        values.append(mmd2_unbiased(t1[i1], t2[i2], degree, coef0))
    return float(np.mean(values)), float(np.std(values))
