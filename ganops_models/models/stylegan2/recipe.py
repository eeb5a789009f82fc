"""StyleGAN2-ADA recipe: networks from options, lazy-regularised Adam, G EMA, ADA.

Phases per step (StyleGAN2-ADA): Gmain, Greg every ``pl_interval`` steps, Dmain, Dreg every
``r1_interval`` steps; a regularised optimiser uses lr * c and betas ** c with c = I / (I + 1). Only
a regulariser that runs gets its phase and its correction: with ``pl_weight`` 0 (StyleGAN3's
presets, cifar, tiny) G's Adam has lr and betas as given (c = 1), as NVIDIA's stylegan3 train.py
sets ``G_reg_interval`` only for its stylegan2 config; likewise D with ``gamma`` 0.
G EMA: half-life ``ema`` kimg, ramped up to ``ema_rampup`` * cur_nimg when set. Freeze-D (``freezed``):
the first layers of D get no gradients and are not in D's optimiser.

Rounds, as in NVIDIA's training_loop: each phase splits this process's batch into rounds of
``batch_gpu`` samples; every round draws its own style-mixing cutoff, runs the path-length term on
``batch_gpu // 2`` samples (at least 1) and updates pl_mean, and backpropagates its loss (a mean over
the round, times ``gain = interval``). The rounds' gradients add up (NVIDIA does not divide by the
number of rounds; Adam is invariant to that scale up to eps), then they are averaged over processes
and nan_to_num'd before the optimiser step.

Deliberate differences: the conditioning labels of generated samples are a permutation of the
batch's labels (NVIDIA draws labels of random dataset images); a round of one sample still runs
the path-length term on one sample (NVIDIA's ``batch_gpu // 2`` would be empty); NVIDIA's
stylegan2-ada-pytorch keeps ``G_reg_interval = 4`` whatever ``pl_weight`` is, so its cifar config (pl_weight
0) trains G with lr * 4/5 and betas ** 4/5 and an empty Greg phase; ganops' cifar preset uses c = 1 and
no Greg phase, as the stylegan3 repo does for every config without path length.
"""
import copy
import functools
from typing import Dict, Optional

import torch

from ganops_models.models.stylegan2.loss import StyleGAN2Loss
from ganops_models.models.stylegan2.network import Discriminator, Generator, frozen_d_parameters
from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models.training import augmentation
from ganops_models.training.cuda_graphs import PhaseGraphs
from ganops_models.training.recipe import DataInfo, Recipe, adam
from ganops_models.training.step_compile import compile_phase


def network_options(opts, device: torch.device) -> dict:
    """Options G and D share: channels, fp16 layers and their dtype, conv clamp, channels_last (NVIDIA's
    --nhwc: fp16_channels_last)."""
    low_precision = opts.precision if opts.num_fp16_res > 0 else "fp32"
    return dict(channel_base=opts.cbase, channel_max=opts.cmax, num_fp16_res=opts.num_fp16_res,
                precision=low_precision, conv_clamp=opts.conv_clamp,
                channels_last=opts.nhwc and low_precision != "fp32")


def build_discriminator(opts, data: DataInfo, device: torch.device) -> Discriminator:
    """StyleGAN2's D for the options and data, on ``device`` (training mode, no grad)."""
    D = Discriminator(c_dim=data.label_dim if opts.cond else 0, resolution=tuple(opts.resolution or data.resolution),
                      img_channels=data.num_channels, architecture=opts.d_arch, mbstd_group_size=opts.mbstd_group,
                      mapping_layers=opts.d_map, **network_options(opts, device))
    return D.to(device).train().requires_grad_(False)


def build_networks(opts, data: DataInfo, device: torch.device):
    """(G, D) for the options and data (``opts.resolution`` or the data's), on ``device``."""
    G = Generator(z_dim=opts.z_dim, c_dim=data.label_dim if opts.cond else 0, w_dim=opts.w_dim,
                  resolution=tuple(opts.resolution or data.resolution), img_channels=data.num_channels,
                  mapping_layers=opts.map, architecture=opts.g_arch, use_noise=opts.g_noise,
                  **network_options(opts, device))
    return G.to(device).train().requires_grad_(False), build_discriminator(opts, data, device)


def lazy_adam(params, lr: float, reg_interval: Optional[int], capturable: bool = False) -> torch.optim.Adam:
    """Adam (fused where the device allows: :func:`~ganops_models.training.recipe.adam`; betas 0, 0.99, eps 1e-8) with the lazy-regularisation correction c = I / (I + 1) for a
    regulariser that runs every I > 0 steps (c = 1 for None or 0: no regulariser, or one in every step)."""
    c = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    return adam(params, lr=lr * c, betas=(0.0 ** c, 0.99 ** c), eps=1e-8, capturable=capturable)


class StyleGAN2Recipe(Recipe):
    name = "stylegan2"
    Options = StyleGAN2Options
    default_cfg = {"cpu": "tiny", "cuda": "auto"}

    def __init__(self, opts, data: DataInfo, device, dist):
        super().__init__(opts, data, device, dist)
        self.round_size = opts.batch_gpu or self.batch_per_process   # samples per round (NVIDIA's batch_gpu)
        torch.manual_seed(opts.seed)   # identical initial weights on every rank
        self.G, self.D = self.build_networks(opts, data, device)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.augment = augmentation.build(opts, device)
        self.loss = self.build_loss(augment_pipe=self.augment.pipe, r1_gamma=opts.gamma,
                                    style_mixing_prob=opts.style_mixing, pl_weight=opts.pl_weight,
                                    real_sign_hook=self.augment.accumulate)
        self.G_reg_interval = opts.pl_interval if opts.pl_weight != 0 else None
        self.D_reg_interval = opts.r1_interval if opts.gamma != 0 else None
        self.opt_G = lazy_adam(self.G.parameters(), opts.glr, self.G_reg_interval, capturable=opts.cuda_graphs)
        self.frozen_D = frozen_d_parameters(self.D, opts.freezed)   # Freeze-D: never updated
        frozen = {id(p) for p in self.frozen_D}
        self.opt_D = lazy_adam([p for p in self.D.parameters() if id(p) not in frozen], opts.dlr, self.D_reg_interval,
                               capturable=opts.cuda_graphs)
        # (phase, module, optimiser, interval): with lazy regularisation (interval > 0) the main and
        # reg phases are separate steps; interval 0 regularises in the main step ('Gboth'/'Dboth').
        self.phases = (self._phases("G", self.G, self.opt_G, self.G_reg_interval)
                       + self._phases("D", self.D, self.opt_D, self.D_reg_interval))
        self.accumulate = {}     # phase -> its compiled round (--compile: see compile())
        self.graphs = PhaseGraphs() if opts.cuda_graphs else None    # --cuda-graphs: see run_phase()

    build_networks = staticmethod(build_networks)     # (opts, data, device) -> (G, D)

    def build_loss(self, **kwargs) -> StyleGAN2Loss:
        return StyleGAN2Loss(self.G, self.D, **kwargs)

    @staticmethod
    def _phases(prefix, module, opt, interval: Optional[int]):
        """interval None: no regulariser; 0: regularised in the main step; I > 0: lazily every I steps."""
        if interval is None:
            return [(prefix + "main", module, opt, 1)]
        if interval == 0:
            return [(prefix + "both", module, opt, 1)]
        return [(prefix + "main", module, opt, 1), (prefix + "reg", module, opt, interval)]

    def modules(self) -> Dict[str, torch.nn.Module]:
        mods = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        if self.augment.pipe is not None:
            mods["augment_pipe"] = self.augment.pipe
        return mods

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn([n, self.G.z_dim], generator=generator)

    def compile(self) -> None:
        """``--compile``: each phase's round (forward, augmentation, R1 / path length with their input
        gradients, and the backward into the parameters) becomes one compiled function
        (:func:`~ganops_models.training.step_compile.compile_phase`); the optimiser step, G EMA and
        ADA's adjustment stay eager (fused Adam and foreach ops already)."""
        self.accumulate = {name: compile_phase(self._phase_function(name)) for name, *_ in self.phases}

    def _phase_function(self, phase: str):
        def accumulate(real_img, real_c, gen_z, gen_c, gain):
            return self.loss.accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, gain=gain)
        return accumulate

    def run_phase(self, phase: str, reals, labels) -> Dict[str, torch.Tensor]:
        """One optimiser step of ``phase`` (one of ``self.phases``: Gmain, Greg, Gboth, Dmain, Dreg,
        Dboth) on this batch, its gradients accumulated over rounds of ``round_size`` samples; returns
        the stats averaged over the rounds (``pl_mean``: its value after the last round). With
        ``--cuda-graphs`` the whole phase, optimiser step included, is a replayed CUDA graph
        (:mod:`~ganops_models.training.cuda_graphs`), one per phase and :meth:`graph_key`."""
        if self.graphs is None:
            return self._run_phase(phase, reals, labels)
        return self.graphs.run((phase, self.graph_key(phase)), functools.partial(self._run_phase, phase), reals, labels)

    def graph_key(self, phase: str) -> tuple:
        """What a captured phase has baked in besides its input shapes: its optimiser's learning rates and
        betas (a rollback halves the learning rates: a new capture)."""
        _, _, opt, _ = next(p for p in self.phases if p[0] == phase)
        return tuple((g["lr"], tuple(g["betas"])) for g in opt.param_groups)

    def _run_phase(self, phase: str, reals, labels) -> Dict[str, torch.Tensor]:
        _, module, opt, interval = next(p for p in self.phases if p[0] == phase)
        n = reals.shape[0]
        gen_z = torch.randn([n, self.G.z_dim], device=self.device)
        gen_c = labels[torch.randperm(n, device=labels.device)] if labels.shape[1] > 0 else labels
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        if module is self.D:
            for p in self.frozen_D:
                p.requires_grad_(False)
        accumulate = self.accumulate.get(phase) or self._phase_function(phase)
        rounds = [accumulate(*batch, gain=interval)
                  for batch in zip(*(t.split(self.round_size) for t in (reals, labels, gen_z, gen_c)))]
        module.requires_grad_(False)
        self.step_optimizer(opt, module.parameters())
        stats = {name: torch.stack([r[name] for r in rounds]).mean() for name in rounds[0]}
        if phase in ("Greg", "Gboth") and self.opts.pl_weight != 0:
            stats["pl_mean"] = self.loss.pl_mean.detach().clone()
        return stats

    def train_step(self, reals, labels, step: int, cur_nimg: int) -> Dict[str, torch.Tensor]:
        stats = {}
        for phase, _, _, interval in self.phases:
            if step % interval == 0:
                stats.update(self.run_phase(phase, reals, labels))
        self.update_ema(cur_nimg)
        self.augment.update(step, self.opts.batch)
        if self.augment.pipe is not None:
            stats["augment_p"] = self.augment.pipe.p.detach().clone()
        return stats

    @torch.no_grad()
    def sample(self, z, c=None, truncation_psi: float = 1.0, noise_mode: str = "const", batch: Optional[int] = None):
        batch = batch or self.batch_per_process
        c = c if c is not None else torch.zeros([z.shape[0], self.G.c_dim])
        out = [self.G_ema(zb.to(self.device), cb.to(self.device), truncation_psi=truncation_psi,
                          noise_mode=noise_mode).float().cpu()
               for zb, cb in zip(z.split(batch), c.split(batch))]
        return torch.cat(out)

    def generator_for_eval(self) -> torch.nn.Module:
        return self.G_ema

    def arch_spec(self) -> dict:
        o = self.opts
        return {"resolution": list(o.resolution or self.data.resolution), "img_channels": self.data.num_channels,
                "c_dim": self.G.c_dim, "z_dim": o.z_dim, "w_dim": o.w_dim, "map": o.map, "cbase": o.cbase,
                "cmax": o.cmax, "g_arch": o.g_arch, "g_noise": o.g_noise, "d_arch": o.d_arch,
                "num_fp16_res": o.num_fp16_res,
                "precision": o.precision if o.num_fp16_res > 0 else "fp32", "conv_clamp": o.conv_clamp,
                "mbstd_group": o.mbstd_group,
                # only when not the default 8, so checkpoints written before d_map existed still match
                **({"d_map": o.d_map} if o.d_map != 8 else {})}

    @property
    def augment_p(self) -> Optional[float]:
        return float(self.augment.pipe.p) if self.augment.pipe is not None else None

    def state_dict(self) -> dict:
        return {**self.gan_state_dict(), "pl_mean": self.loss.pl_mean.detach().cpu(),
                "augment": self.augment.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.load_gan_state_dict(state)
        self.loss.pl_mean.copy_(state["pl_mean"])     # in place (see StyleGAN2Loss.pl_mean)
        self.augment.load_state_dict(state["augment"])
        for opt in (self.opt_G, self.opt_D):     # the checkpoint's param_groups carry their run's flag
            for group in opt.param_groups:
                group["capturable"] = self.graphs is not None
        if self.graphs is not None:    # the optimisers' state tensors were replaced: capture again
            self.graphs.clear()
