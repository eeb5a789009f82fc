"""Triton kernels and their launchers (wrapped as torch.library custom ops by ganops.ops)."""


def _patch_interpreter_index() -> None:
    """Triton 3.6's CPU interpreter turns a scalar kernel argument (a one-element 1-D array) into a
    Python int with int(array), which NumPy >= 2.4 refuses ("only 0-dimensional arrays can be
    converted to Python scalars", triton-lang/triton#9171): a loop like ``range(0, C, BLOCK)`` over a
    runtime argument then fails under TRITON_INTERPRET=1. Triton 3.8 squeezes first; do the same.
    Only the interpreter is touched (compiled kernels never call it); a no-op where already fixed."""
    import os

    if os.environ.get("TRITON_INTERPRET", "0") != "1":
        return
    try:
        from triton.runtime import interpreter
    except ImportError:
        return
    original = getattr(interpreter, "_patch_lang_tensor", None)
    if original is None or getattr(original, "_ganops_index_fix", False):
        return

    def _patch_lang_tensor(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))

    _patch_lang_tensor._ganops_index_fix = True
    interpreter._patch_lang_tensor = _patch_lang_tensor


_patch_interpreter_index()
