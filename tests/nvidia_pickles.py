"""Pickles with the record structure NVIDIA's code writes, built without NVIDIA's code.

* StyleGAN2-ADA: each network pickles as ``(torch_utils.persistence._reconstruct_persistent_obj,
  (meta,))`` with meta = {type, version, module_src, class_name, state = the module's __dict__
  (_parameters, _buffers, _modules of nested records, hooks, _init_args, _init_kwargs, attributes)};
* TensorFlow: ``dnnlib.tflib.network.Network`` objects whose state holds static_kwargs, components
  and (name, ndarray) variables.

Stand-in modules ``torch_utils.persistence``, ``dnnlib.util`` and ``dnnlib.tflib.network`` are put
into ``sys.modules`` only while pickling, so the pickles name exactly NVIDIA's globals.
The NVIDIA names of a ganops network's weights come from :func:`nvidia_state` (an implementation
independent of the loader's) so the tests check the loader's mapping.
"""
import collections
import contextlib
import math
import pickle
import re
import sys
import types

import numpy as np
import torch

BUFFERS = ("w_avg", "noise_const", "resample_filter", "p",
           "magnitude_ema", "up_filter", "down_filter", "transform", "freqs", "phases")   # the last six: StyleGAN3
# module source text of the records (never executed by the loader: running it would create ``marker``)
SRC_NETWORKS = ("import pathlib\npathlib.Path({marker!r}).write_text('executed')\n"
                "class SynthesisNetwork(torch.nn.Module): pass\n")
SRC_AUGMENT = "class AugmentPipe(torch.nn.Module): pass\n"
SRC_STYLEGAN3 = "class SynthesisInput(torch.nn.Module): pass\n"   # networks_stylegan3
SRC_STYLEGAN3_SG2 = "class SynthesisBlock(torch.nn.Module):\n    def __init__(self, fused_modconv_default=True): pass\n"


def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its name is pickled
    raise AssertionError("never called")


class EasyDict(dict):
    pass


class Network:
    """dnnlib.tflib.network.Network as pickled: its __getstate__ dict."""

    def __init__(self, name, static_kwargs, variables, components=None):
        self.state = {"version": 4, "name": name, "static_kwargs": EasyDict(static_kwargs),
                      "components": EasyDict(components or {}), "build_module_src": "import os\n",
                      "build_func_name": name, "variables": list(variables.items())}

    def __getstate__(self):
        return self.state


class Record:
    """A persistent-class object as pickled by torch_utils.persistence."""

    def __init__(self, class_name, module_src, state):
        self.meta = {"type": "class", "version": 6, "module_src": module_src, "class_name": class_name,
                     "state": state}

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,)


@contextlib.contextmanager
def nvidia_modules():
    """Stand-in NVIDIA modules in sys.modules, so pickle writes their names."""
    mods = {"torch_utils": types.ModuleType("torch_utils"),
            "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
            "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": types.ModuleType("dnnlib.util"),
            "dnnlib.tflib": types.ModuleType("dnnlib.tflib"),
            "dnnlib.tflib.network": types.ModuleType("dnnlib.tflib.network")}
    for obj, module in ((_reconstruct_persistent_obj, "torch_utils.persistence"), (EasyDict, "dnnlib.util"),
                        (Network, "dnnlib.tflib.network")):
        setattr(mods[module], obj.__name__, obj)
        obj.__module__ = module
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k)
            else:
                sys.modules[k] = v
        for obj in (_reconstruct_persistent_obj, EasyDict, Network):
            obj.__module__ = __name__


def module_record(tensors: dict, class_name="Module", module_src="", init_kwargs=None) -> Record:
    """Record of a module tree holding ``tensors`` (dotted names; BUFFERS are buffers)."""
    own = {k: v for k, v in tensors.items() if "." not in k}
    children = collections.OrderedDict()
    for name in tensors:
        if "." in name:
            children.setdefault(name.split(".", 1)[0], {})[name.split(".", 1)[1]] = tensors[name]
    state = {"training": False,
             "_parameters": collections.OrderedDict((k, torch.nn.Parameter(v.clone(), requires_grad=False))
                                                    for k, v in own.items() if k not in BUFFERS),
             "_buffers": collections.OrderedDict((k, v.clone()) for k, v in own.items() if k in BUFFERS),
             "_non_persistent_buffers_set": set(), "_backward_hooks": collections.OrderedDict(),
             "_forward_hooks": collections.OrderedDict(), "_forward_pre_hooks": collections.OrderedDict(),
             "_state_dict_hooks": collections.OrderedDict(), "_load_state_dict_pre_hooks": collections.OrderedDict(),
             "_modules": collections.OrderedDict((k, module_record(v, "Layer", module_src))
                                                 for k, v in children.items()),
             "_init_args": (), "_init_kwargs": init_kwargs or {}, "weight_gain": np.float64(0.125)}
    return Record(class_name, module_src, state)


def nvidia_state(module: torch.nn.Module, kind: str) -> dict:
    """The state dict of a ganops StyleGAN2 G ('G') or D ('D') under StyleGAN2-ADA's names."""
    out = {}
    top = min(module.resolution)
    for name, value in module.state_dict().items():
        name = re.sub(r"^mapping\.layers\.", "mapping.fc", name)
        if kind == "G":
            name = re.sub(r"^synthesis\.blocks\.(\d+)", lambda m: f"synthesis.b{2 ** (int(m.group(1)) + 2)}", name)
        else:
            name = re.sub(r"^blocks\.(\d+)", lambda m: f"b{top // 2 ** int(m.group(1))}", name)
        out[name] = value.detach().clone()
    return out


def g_kwargs(G, channel_base, channel_max, architecture="skip", num_fp16_res=0, conv_clamp=None, use_noise=True,
             flat=False):
    """Generator kwargs as StyleGAN2-ADA's train.py passes them (``flat``: synthesis options at the top
    level, as StyleGAN3's train.py passes them to networks_stylegan2.Generator)."""
    synthesis = EasyDict(channel_base=channel_base, channel_max=channel_max, architecture=architecture,
                         num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, use_noise=use_noise)
    top = EasyDict(z_dim=G.z_dim, c_dim=G.c_dim, w_dim=G.w_dim, img_resolution=G.resolution[0],
                   img_channels=G.img_channels, mapping_kwargs=EasyDict(num_layers=len(G.mapping.layers)))
    return EasyDict(**top, **synthesis, fused_modconv_default="inference_only") if flat else \
        EasyDict(**top, synthesis_kwargs=synthesis)


def d_kwargs(D, channel_base, channel_max, architecture="resnet", mbstd_group_size=4, num_fp16_res=0,
             conv_clamp=None):
    return EasyDict(c_dim=D.c_dim, img_resolution=D.resolution[0], img_channels=D.img_channels,
                    architecture=architecture, channel_base=channel_base, channel_max=channel_max,
                    num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, block_kwargs=EasyDict(freeze_layers=0),
                    mapping_kwargs=EasyDict(), epilogue_kwargs=EasyDict(mbstd_group_size=mbstd_group_size))


def write_snapshot(path, G, D, G_ema, G_kwargs, D_kwargs, marker, augment_p=None, protocol=3, src=None, d_src=None):
    """A StyleGAN2-ADA ``network-snapshot-*.pkl`` of these ganops networks (``src``: the records' module source,
    ``d_src``: D's when it differs, as in StyleGAN3 snapshots)."""
    src = src or SRC_NETWORKS.format(marker=str(marker))
    data = {"training_set_kwargs": EasyDict(path="~/data/toy.zip", resolution=G.resolution[0]),
            "G": module_record(nvidia_state(G, "G"), "Generator", src, G_kwargs),
            "D": module_record(nvidia_state(D, "D"), "Discriminator", d_src or src, D_kwargs),
            "G_ema": module_record(nvidia_state(G_ema, "G"), "Generator", src, G_kwargs),
            "augment_pipe": (module_record({"p": torch.tensor(augment_p)}, "AugmentPipe", SRC_AUGMENT)
                             if augment_p is not None else None)}
    with nvidia_modules(), open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return path


# --- TensorFlow -----------------------------------------------------------------------------------

def _tf_dense(v):
    return v.numpy().T.copy()


def _tf_conv(v, flip=False):
    a = v.numpy().transpose(2, 3, 1, 0)       # [out, in, kh, kw] -> [kh, kw, in, out]
    return a[::-1, ::-1].copy() if flip else a.copy()


def tf_generator_variables(G) -> dict:
    """TF StyleGAN2 variables (with component prefixes) holding the weights of a ganops G."""
    s = nvidia_state(G, "G")
    v = {"dlatent_avg": s["mapping.w_avg"].numpy(), "lod": np.float32(0)}
    for i in range(len(G.mapping.layers)):
        v[f"mapping/Dense{i}/weight"] = _tf_dense(s[f"mapping.fc{i}.weight"])
        v[f"mapping/Dense{i}/bias"] = s[f"mapping.fc{i}.bias"].numpy()
    if G.c_dim:
        v["mapping/LabelEmbed/weight"] = _tf_dense(s["mapping.embed.weight"])
        v["mapping/LabelEmbed/bias"] = s["mapping.embed.bias"].numpy()
    res = G.resolution[0]
    for r in (2 ** i for i in range(2, int(math.log2(res)) + 1)):
        layers = {"conv1": "Conv" if r == 4 else "Conv1"}
        if r > 4:
            layers["conv0"] = "Conv0_up"
        if f"synthesis.b{r}.torgb.weight" in s:
            layers["torgb"] = "ToRGB"
        for ours, tf in layers.items():
            p, t = f"synthesis.b{r}.{ours}", f"synthesis/{r}x{r}/{tf}"
            v[f"{t}/weight"] = _tf_conv(s[f"{p}.weight"], flip=(ours == "conv0"))
            v[f"{t}/bias"] = s[f"{p}.bias"].numpy()
            v[f"{t}/mod_weight"] = _tf_dense(s[f"{p}.affine.weight"])
            v[f"{t}/mod_bias"] = s[f"{p}.affine.bias"].numpy() - 1
            if f"{p}.noise_strength" in s:
                v[f"{t}/noise_strength"] = s[f"{p}.noise_strength"].numpy()
                idx = 0 if r == 4 else int(math.log2(r)) * 2 - (5 if ours == "conv0" else 4)
                v[f"synthesis/noise{idx}"] = s[f"{p}.noise_const"].numpy()[None, None]
        if r == 4:
            v["synthesis/4x4/Const/const"] = s["synthesis.b4.const"].numpy()[None]
        if f"synthesis.b{r}.skip.weight" in s:
            v[f"synthesis/{r}x{r}/Skip/weight"] = _tf_conv(s[f"synthesis.b{r}.skip.weight"], flip=True)
    return {k: np.asarray(a, dtype=np.float32) for k, a in v.items()}


def tf_discriminator_variables(D) -> dict:
    s = nvidia_state(D, "D")
    v = {}
    for name, value in s.items():
        m = re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)", name)
        if m:
            r, layer, what = m.groups()
            tf = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[layer]
            if r == "4":
                tf = "FromRGB"
            v[f"{r}x{r}/{tf}/{what}"] = _tf_conv(value) if what == "weight" else value.numpy()
    for ours, tf, conv in (("b4.conv", "4x4/Conv", True), ("b4.fc", "4x4/Dense0", False), ("b4.out", "Output", False)):
        v[f"{tf}/weight"] = _tf_conv(s[f"{ours}.weight"]) if conv else _tf_dense(s[f"{ours}.weight"])
        v[f"{tf}/bias"] = s[f"{ours}.bias"].numpy()
    if D.c_dim:
        v["LabelEmbed/weight"] = _tf_dense(s["mapping.embed.weight"])
        v["LabelEmbed/bias"] = s["mapping.embed.bias"].numpy()
    return {k: np.asarray(a, dtype=np.float32) for k, a in v.items()}


def _as_lod(variables: dict, res: int) -> dict:
    """Progressive-growing names of 'orig' networks: <res>x<res>/ToRGB|FromRGB -> ToRGB_lod0|FromRGB_lod0."""
    return {re.sub(rf"(^|/){res}x{res}/(ToRGB|FromRGB)/", r"\1\2_lod0/", k): a for k, a in variables.items()}


def write_tf_pickle(path, G, D, Gs, G_static, D_static, lod=False):
    """A StyleGAN2 TensorFlow ``(G, D, Gs)`` pickle of these ganops networks (protocol 4, as TF's);
    ``lod``: 'orig' networks stored with ToRGB_lod0/FromRGB_lod0 names (no architecture option)."""
    res = G.resolution[0]

    def gen(net, name):
        variables = tf_generator_variables(net)
        variables = _as_lod(variables, res) if lod else variables
        split = {"mapping": {}, "synthesis": {}, "": {}}
        for k, a in variables.items():
            scope, _, rest = k.partition("/")
            split[scope if rest else ""][rest or k] = a
        return Network(name, G_static, split[""], {"mapping": Network("G_mapping", {}, split["mapping"]),
                                                   "synthesis": Network("G_synthesis", {}, split["synthesis"])})
    d_vars = tf_discriminator_variables(D)
    data = (gen(G, "G"), Network("D", D_static, _as_lod(d_vars, res) if lod else d_vars), gen(Gs, "Gs"))
    with nvidia_modules(), open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    return path
