"""ganops_models: StyleGAN2-ADA / FastGAN / DCGAN training on the ganops kernels.

``ganops_models.load_network(path, device='cpu')`` loads any supported network file (ganops
checkpoint, NVIDIA StyleGAN2-ADA PyTorch or StyleGAN2 TensorFlow pickle) as ganops modules.
"""
from ganops_models.network_loader import LoadedNetwork, load_network

__all__ = ["LoadedNetwork", "load_network"]
