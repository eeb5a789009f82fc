"""Pure-PyTorch reference implementations: the ground truth every fast backend is tested against."""
