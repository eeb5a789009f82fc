"""Translate the vendored ops' ``impl`` argument to ganops dispatch.

NVIDIA's ops default to ``impl='cuda'`` and quietly use their reference code for CPU tensors; to
return the same results on every device, ``'cuda'`` here means "the best ganops backend for the
input" and ``'ref'`` means ganops' reference.
"""


def translate(impl: str):
    if impl == "cuda":
        return None
    if impl == "ref":
        return "ref"
    raise ValueError(f"impl must be 'cuda' or 'ref' (the vendored ops' values), got {impl!r}")
