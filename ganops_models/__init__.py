"""ganops_models: StyleGAN2-ADA / FastGAN / DCGAN training on the ganops kernels."""
