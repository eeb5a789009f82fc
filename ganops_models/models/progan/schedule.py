"""ProGAN's growth schedule (NVIDIA progressive_growing_of_gans, ``TrainingSchedule``) as a pure
function of the number of real images shown.

Starting at ``start_res``, each resolution is trained for ``lod_kimg`` (stable phase), then the next
resolution is faded in over ``lod_kimg`` (alpha 0 -> 1, linear in images), until ``final_res`` is
reached, which then stays stable. With ``phase = kimg // (2 * lod_kimg)`` and ``t`` the kimg within
it, NVIDIA's level of detail is ``lod = log2(final / start) - phase - max(t - lod_kimg, 0) / lod_kimg``
(clamped at 0); the output resolution is ``final / 2 ** floor(lod)`` and ``alpha = 1 - frac(lod)``.
The batch of a phase is ``batch_per_res.get(resolution, batch)`` (the resolution being faded in
during a fade), NVIDIA's ``minibatch_dict`` / ``minibatch_base``; as there, entries for resolutions
the run never reaches are ignored (the presets list them for every final resolution).
"""
import dataclasses
import math
from typing import Dict


@dataclasses.dataclass(frozen=True)
class Phase:
    """Where growth stands: ``index`` counts stable and fade phases from 0 (the first stable one);
    ``resolution`` is the output resolution; ``alpha`` the weight of its newest block (1 when stable);
    ``kimg`` the kimg spent in this phase; ``batch`` the global batch size."""
    index: int
    resolution: int
    alpha: float
    kimg: float
    batch: int

    @property
    def fading(self) -> bool:
        return self.alpha < 1.0


def parse_batch_per_res(text) -> Dict[int, int]:
    """'4:128,8:64' (or a dict) -> {4: 128, 8: 64}; '' -> {}."""
    if isinstance(text, dict):
        items = text.items()
    else:
        try:
            items = [part.split(":") for part in str(text).split(",") if part.strip()]
            items = [(int(r), int(b)) for r, b in items]
        except ValueError:
            raise ValueError(f"--batch-per-res must look like '4:128,8:64' (resolution:batch, ...), got {text!r}") from None
    out = {int(r): int(b) for r, b in items}
    if any(b < 1 or r < 1 for r, b in out.items()):
        raise ValueError(f"--batch-per-res: resolutions and batches must be positive, got {text!r}")
    return out


class GrowthSchedule:
    def __init__(self, start_res: int, final_res: int, lod_kimg: float, batch: int,
                 batch_per_res: Dict[int, int]):
        for name, res in (("start resolution", start_res), ("--resolution", final_res)):
            if res < 4 or res & (res - 1):
                raise ValueError(f"ProGAN needs a power-of-two {name} >= 4, got {res}")
        if start_res > final_res:
            raise ValueError(f"start resolution {start_res} is above the final resolution {final_res}")
        if not (lod_kimg > 0 and math.isfinite(lod_kimg)):
            raise ValueError(f"--lod-kimg must be a positive number of kimg, got {lod_kimg}")
        self.start_res, self.final_res, self.lod_kimg = start_res, final_res, float(lod_kimg)
        self.batch, self.batch_per_res = batch, dict(batch_per_res)
        self.num_levels = int(math.log2(final_res // start_res))     # resolutions grown after the start

    def batch_at(self, resolution: int) -> int:
        return self.batch_per_res.get(resolution, self.batch)

    def at(self, cur_nimg: int) -> Phase:
        """The phase after ``cur_nimg`` real images."""
        kimg = cur_nimg / 1000.0
        grown = int(kimg // (2 * self.lod_kimg))                      # NVIDIA's phase_idx
        t = kimg - grown * 2 * self.lod_kimg
        if grown >= self.num_levels:                                  # final resolution, stable forever
            index = 2 * self.num_levels
            start = 2 * self.num_levels * self.lod_kimg
            return Phase(index, self.final_res, 1.0, kimg - start, self.batch_at(self.final_res))
        if t <= self.lod_kimg:                                        # stable at start_res * 2**grown
            res = self.start_res << grown
            return Phase(2 * grown, res, 1.0, t, self.batch_at(res))
        res = self.start_res << (grown + 1)                           # fading res in
        fade_kimg = t - self.lod_kimg
        return Phase(2 * grown + 1, res, fade_kimg / self.lod_kimg, fade_kimg, self.batch_at(res))
