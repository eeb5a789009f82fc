"""What a user should know about the training data, as one-line messages printed once per run:
files left out, images resized on the fly and datasets too small for a GAN without care."""
from typing import List, Sequence, Tuple

from ganops_models.data.dataset import ImageDataset, resized_count
from ganops_models.data.source import shown

SKIPPED_SHOWN = 5   # files named in the summary of skipped files

SMALL_DATASET = 100   # below this many images a warning gives the ADA / mirroring advice


def data_notes(dataset: ImageDataset, aug: str, mirror: bool) -> List[str]:
    """Messages about ``dataset`` as the run uses it (``aug``: the --aug value, ``mirror``: --mirror)."""
    notes = [skipped_message(dataset.skipped)] if dataset.skipped else []
    count, example = resized_count(dataset)
    if count:
        h, w = dataset.resolution
        notes.append(f"{count} of {dataset.num_images} images are not {w}x{h} (e.g. {example[0]}x{example[1]}): "
                     f"they are resized on the fly ({dataset.transform}); pass --resolution to train at another "
                     f"size, or prepare the images once with `python -m ganops_models.dataset_tool`")
    if dataset.num_images < SMALL_DATASET:
        advice = []
        if aug != "ada":
            advice.append("use --aug ada (adaptive augmentation, made for small datasets)")
        if not mirror:
            advice.append("add --mirror if left-right flipped images are still valid examples")
        notes.append(f"warning: only {dataset.num_images} training images; a GAN this data-starved soon memorises "
                     f"them or collapses" + (": " + "; ".join(advice) if advice else "")
                     + "; a few hundred or more images give much better results")
    return notes


def skipped_message(skipped: Sequence[Tuple[str, str]], shown_count: int = SKIPPED_SHOWN) -> str:
    """'skipped N file(s): 'a.png' (reason); ... and K more' for [(name, reason)] (each one is also named
    in a warning when it is skipped)."""
    listed = "; ".join(f"{shown(name)} ({reason})" for name, reason in skipped[:shown_count])
    more = f"; and {len(skipped) - shown_count} more (named in the warnings above)" if len(skipped) > shown_count else ""
    return f"skipped {len(skipped)} file(s): {listed}{more}"
