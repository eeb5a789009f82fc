"""Read NVIDIA's network pickles without running any code stored in them.

NVIDIA's own loader (``legacy.load_network_pkl``) unpickles with the standard unpickler, which
imports and calls whatever the file names, and its persistence records even ``exec`` the Python
source stored in the pickle. :func:`safe_load` instead resolves every global the pickle names
through an allow-list:

* tensors: ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter[_with_state]``,
  ``torch._tensor._rebuild_from_type_v2`` (plain Tensor/Parameter only; the classes themselves may be
  named but not called) and
  ``torch.storage._load_from_bytes`` (read back with ``torch.load(weights_only=True)``);
* numpy arrays and scalars of numeric dtypes (``_reconstruct``, ``_frombuffer``, ``ndarray``, ``dtype``,
  ``scalar``);
* ``collections.OrderedDict``, ``builtins.set/frozenset``, ``_codecs.encode`` (latin-1 bytes);
* the records of NVIDIA's code, mapped to inert stand-ins: ``torch_utils.persistence.
  _reconstruct_persistent_obj`` -> :class:`PersistentRecord` (class name, module source as text,
  constructor kwargs, module state), ``dnnlib.tflib.network.Network`` -> :class:`TFNetworkRecord`
  (static kwargs, components, numpy variables), ``dnnlib.util.EasyDict`` -> :class:`EasyDict`.

Anything else (``os.system``, ``builtins.eval``, another class) raises :class:`UnsafePickleError`
naming the global, before it could be called. Persistent ids are refused too.

The pickle's BUILD step (set the state of the object on top of the stack) is allowed only on the
instances the loader itself creates that take a state (numpy arrays, TensorFlow network records),
never on the allow-listed classes, functions or tokens themselves: a file cannot change the loader
for later loads. The loaded structure is bounded (:func:`check_structure`: at most
:data:`MAX_DEPTH` levels of nesting and :data:`MAX_OBJECTS` objects, counting shared ones at each
use), so deep, cyclic or exponentially shared payloads are refused with a clear error instead of
a RecursionError or an exhausted memory.
"""
import _codecs
import _compat_pickle
import collections
import io
import pickle
import re
from typing import Any, Dict, Optional

import numpy as np
import torch

from ganops_models.errors import CheckpointError, UnsafePickleError


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict (attribute access is not needed)."""


class PersistentRecord:
    """Stand-in for an object of a ``torch_utils.persistence`` class: the pickled ``meta`` dict
    (``type``, ``version``, ``module_src``, ``class_name``, ``state`` = the object's ``__dict__``).
    ``module_src`` is kept as text and never executed."""

    def __init__(self, meta):
        if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
            raise CheckpointError("a persistence record in the pickle has no state dict (corrupt file?)")
        self.class_name = str(meta.get("class_name"))
        self.module_src = str(meta.get("module_src", ""))
        self.version = meta.get("version")
        self.state = meta["state"]

    @property
    def init_kwargs(self) -> dict:
        """Constructor kwargs stored by the persistence decorator (``_init_kwargs``)."""
        if self.state.get("_init_args"):
            raise CheckpointError(f"{self.class_name} record: positional constructor arguments are not supported")
        return _plain(self.state.get("_init_kwargs", {}))

    def state_dict(self, prefix: str = "") -> Dict[str, torch.Tensor]:
        """Parameters and persistent buffers of the module tree, named as ``nn.Module.state_dict``."""
        out = {}
        skip = self.state.get("_non_persistent_buffers_set") or set()
        for key in ("_parameters", "_buffers"):
            for name, value in (self.state.get(key) or {}).items():
                if value is not None and name not in skip:
                    if not isinstance(value, torch.Tensor):
                        raise CheckpointError(f"{prefix}{name} in the {self.class_name} record is not a tensor")
                    out[prefix + name] = value
        for name, child in (self.state.get("_modules") or {}).items():
            if child is None:
                continue
            if not isinstance(child, PersistentRecord):
                raise CheckpointError(f"submodule {prefix}{name} of the {self.class_name} record is not a "
                                      f"persistence record")
            out.update(child.state_dict(f"{prefix}{name}."))
        return out


class TFNetworkRecord:
    """Stand-in for ``dnnlib.tflib.network.Network``: its pickled state (``version``, ``name``,
    ``static_kwargs``, ``components``, ``variables`` = [(name, ndarray)], ``build_module_src`` kept as text)."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise CheckpointError("a TensorFlow network in the pickle has no state dict (corrupt file?)")
        self.state = state

    @property
    def version(self) -> int:
        return int(self.state.get("version", 0))

    @property
    def static_kwargs(self) -> dict:
        return _plain(self.state.get("static_kwargs", {}))

    def variables(self, prefix: str = "") -> Dict[str, np.ndarray]:
        """All variables of this network and its components, named ``component/.../variable``."""
        out = {prefix + name: np.asarray(value) for name, value in self.state.get("variables", [])}
        for name, comp in (self.state.get("components") or {}).items():
            if not isinstance(comp, TFNetworkRecord):
                raise CheckpointError(f"component {prefix}{name} of a TensorFlow network is not a network")
            out.update(comp.variables(f"{prefix}{name}/"))
        return out


def _plain(value):
    """EasyDicts and tuples of kwargs as plain dicts and lists (comparable, JSON-able)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- allow-listed reconstructors ---------------------------------------------------------------

def _no_hooks(hooks, what):
    if hooks:
        raise UnsafePickleError(f"a pickled {what} carries backward hooks; refused")


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    _no_hooks(hooks, "tensor")
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise UnsafePickleError("a pickled tensor does not rebuild from a storage; refused")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, collections.OrderedDict())


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    _no_hooks(hooks, "parameter")
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("a pickled parameter does not hold a tensor; refused")
    return data


def _rebuild_from_type(func, new_type, args, state):
    if func not in (_rebuild_tensor, _rebuild_parameter) or new_type not in (_TENSOR, _PARAMETER):
        raise UnsafePickleError("a pickled tensor is not a plain tensor or parameter; refused")
    return func(*args)


def _storage_from_bytes(data):
    """Storages are pickled as a legacy ``torch.save`` of the storage: read it with torch's own
    restricted unpickler."""
    if not isinstance(data, bytes):
        raise UnsafePickleError("a pickled storage is not bytes; refused")
    return torch_load_weights(io.BytesIO(data), "a pickled storage (torch.storage._load_from_bytes)")


def _numeric_dtype(*args):
    dtype = np.dtype(args[0]) if args else None
    if dtype is None or dtype.kind not in "biufc":
        raise UnsafePickleError(f"numpy dtype {args[:1]!r} in the pickle is not numeric; refused")
    # always a fresh copy (numpy's pickles ask for one): the BUILD that follows must not change numpy's own dtype
    return np.dtype(args[0], bool(args[1]) if len(args) > 1 else False, True)


def _ndarray_reconstruct(subtype, shape, dtype_code):
    if subtype is not _NDARRAY:
        raise UnsafePickleError("a numpy array subclass in the pickle; refused")
    if not isinstance(shape, tuple) or any(not isinstance(n, int) or n != 0 for n in shape):
        # numpy pickles an empty array here and sets its data by BUILD; a size here would be allocated
        raise UnsafePickleError(f"a numpy array in the pickle is reconstructed with shape {shape!r}; refused")
    return np.ndarray.__new__(np.ndarray, shape, _numeric_dtype(dtype_code))


def _ndarray_frombuffer(buffer, dtype, shape, order):
    """numpy's protocol-5 array reconstructor (numeric dtypes only; the data is copied)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or not isinstance(buffer, (bytes, bytearray)):
        raise UnsafePickleError("a numpy array in the pickle is not numeric; refused")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order).copy()


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or not isinstance(data, bytes):
        raise UnsafePickleError("a numpy scalar in the pickle is not numeric; refused")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _latin1_encode(text, encoding="latin1"):
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafePickleError(f"_codecs.encode with {encoding!r} in the pickle; refused")
    return _codecs.encode(text, encoding)


class _TypeToken:
    """A class the pickle may name only as an argument (e.g. the type in ``_rebuild_from_type_v2``);
    calling it (constructing arbitrary objects) is refused."""

    def __init__(self, cls):
        self.cls = cls

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError(f"the pickle calls {self.cls.__module__}.{self.cls.__name__}(...); refused")


_TENSOR, _PARAMETER, _NDARRAY = _TypeToken(torch.Tensor), _TypeToken(torch.nn.Parameter), _TypeToken(np.ndarray)


ALLOWED_GLOBALS: Dict[tuple, Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Tensor"): _TENSOR,
    ("torch.nn.parameter", "Parameter"): _PARAMETER,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _numeric_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _ndarray_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _ndarray_frombuffer,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("dnnlib.tflib.network", "Network"): TFNetworkRecord,
    ("dnnlib.util", "EasyDict"): EasyDict,
}


MAX_DEPTH = 100            # nesting levels of containers and records (NVIDIA's pickles use about 20)
MAX_OBJECTS = 1_000_000    # objects reached from the top, a shared one counted at each use
_BUILD_TARGETS = (np.ndarray, np.dtype, TFNetworkRecord)   # types whose instances take a pickled state


def _children(obj):
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, PersistentRecord):
        return [obj.state]
    if isinstance(obj, TFNetworkRecord):
        return [getattr(obj, "state", None)]
    return ()


def check_structure(obj, what: str, max_depth: int = MAX_DEPTH, max_objects: int = MAX_OBJECTS) -> None:
    """Refuse (:class:`CheckpointError` naming ``what``) a loaded structure nested deeper than
    ``max_depth`` (a cycle counts as endless nesting) or reaching more than ``max_objects`` objects;
    walks without recursion and stops at the first excess."""
    stack, seen = [(obj, 1)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if depth > max_depth:
            raise CheckpointError(f"{what} nests containers or records more than {max_depth} levels deep (or refers "
                                  f"to itself); no network file does: it was refused")
        if seen > max_objects:
            raise CheckpointError(f"{what} holds more than {max_objects:,} objects (counting shared ones at each "
                                  f"use); no network file does: it was refused")
        stack.extend((child, depth + 1) for child in _children(item))


_TORCH_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def torch_load_weights(file, what: str, map_location="cpu"):
    """``torch.load(file, weights_only=True)``; a disallowed global is an :class:`UnsafePickleError`
    naming it (torch's advice to load with ``weights_only=False`` is never passed on)."""
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = _TORCH_GLOBAL.search(str(e))
        if found is None:
            raise
        raise UnsafePickleError(f"{what} refers to {found.group(1)}, which is not allowed in a network or "
                                f"checkpoint file (only tensors and plain containers are); it was not loaded and "
                                f"nothing from it was run. Only use files from sources you trust.") from None


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (its BUILD step can be checked) with globals from the allow-list."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, path: str):
        super().__init__(file)
        self.path = path

    def load_build(self):
        target = self.stack[-2] if len(self.stack) >= 2 else None
        if not isinstance(target, _BUILD_TARGETS):
            name = getattr(target, "__name__", None) or type(target).__name__
            raise UnsafePickleError(f"{self.path!r} tries to set attributes of {name} (a pickle BUILD step on an "
                                    f"object the loader did not create for it); refused, nothing was changed")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module, name):
        # Python 2 names (protocol 0-2 pickles) as the standard find_class maps them; the result is checked below
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self.path!r} refers to {module}.{name}, which is not on the allow-list for network pickles "
                f"(tensors, numpy arrays, NVIDIA persistence/tflib records); it was not loaded and nothing "
                f"from it was run. Only load network pickles from sources you trust.")
        return found

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.path!r} uses persistent ids, which network pickles do not; refused")


def safe_load(path: str, file: Optional[io.BufferedIOBase] = None) -> Any:
    """Unpickle ``path`` through the allow-list; any failure is a :class:`CheckpointError` naming the file."""
    try:
        if file is None:
            with open(path, "rb") as f:
                data = _RestrictedUnpickler(f, path).load()
        else:
            data = _RestrictedUnpickler(file, path).load()
        check_structure(data, repr(path))
        return data
    except UnsafePickleError as e:
        if repr(path) in str(e):
            raise
        raise UnsafePickleError(f"{path!r}: {e}") from None
    except CheckpointError:
        raise
    except Exception as e:  # truncated stream, bad opcode, bad numpy/torch payload
        raise CheckpointError(f"{path!r} is not a readable network pickle; it is corrupt or truncated "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
