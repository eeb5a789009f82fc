"""Public op families: argument checks, backend dispatch, custom ops and autograd.

Every kernel family F has the same files: ``F.py`` (the public op: docstring with the math, argument
checks, ``_registry.choose`` and dispatch to ``ganops.ref.F`` or a fast kernel) and ``_F_fast.py``
(its Triton custom ops, fake kernels and autograd, wired for Triton and CUDA by
``_family.register``, which exports ``KERNELS[backend][op name]``); families whose argument rules
other modules share keep them in ``_F_args.py``. Composite ops (conv2d_resample, penalties) call other
public ops with the backend they chose, so an explicit ``impl`` holds all the way down.
"""
