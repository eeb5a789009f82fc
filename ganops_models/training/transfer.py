"""The training loop's side of fine-tuning (transfer learning from an NVIDIA pickle): the run's
networks start from the pickle's weights. The options of such a run are resolved by
:mod:`ganops_models.tools.fine_tune`.
"""
from typing import Optional

from ganops_models.errors import CheckpointError


def init_from_network(recipe, net) -> None:
    """Copy ``net``'s G, D and G_ema into the recipe's networks (same architecture required)."""
    for name in ("G", "D", "G_ema"):
        try:
            getattr(recipe, name).load_state_dict(getattr(net, name).state_dict())
        except RuntimeError as e:
            raise CheckpointError(f"{net.describe()}: its {name} does not fit the run's network "
                                  f"({str(e).splitlines()[0]})") from e


def log_line(net, augment_p: Optional[float]) -> str:
    return f"resumed from {net.describe()} (transfer learning: kimg 0, augment p {augment_p})"


__all__ = ["init_from_network", "log_line"]
