"""Every error a user of ganops_models can be shown, in one place.

Each is raised with a message that says what is wrong and what to do. The commands print it as
``error: <message>`` (no traceback) and exit with :data:`EXIT_BAD_INPUT` (2); a training run that
diverged exits with :data:`EXIT_DIVERGED` (3).
"""

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


class DatasetError(ValueError):
    """A dataset cannot be used as given."""


class CheckpointError(ValueError):
    """A checkpoint or network file is missing, corrupt, truncated, unsupported or incompatible."""


class UnsafePickleError(CheckpointError):
    """The pickle names a global outside the allow-list; nothing from it was run."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (e.g. the disk is full); the earlier checkpoints are intact."""


class OptionsError(ValueError):
    """Invalid training options (raised before anything is trained)."""


class LPIPSWeightsError(ValueError):
    """The given file(s) do not hold LPIPS VGG16 weights in a supported layout."""


class NoWSpaceError(ValueError):
    """The network is not style-based (FastGAN, DCGAN): it has no mapping network and no w space."""


class MissingExtraError(ImportError):
    """An optional feature's dependency is not installed; the message names the extra that installs it."""


class NonFiniteOutputError(ValueError):
    """A network produced NaN or infinite pixels (its weights are non-finite, e.g. a diverged run)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a command; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class DivergenceError(RuntimeError):
    """Training diverged and the run was stopped (the message names the tick and the last good checkpoint)."""


# The errors a command reports as bad input (exit status 2).
USER_ERRORS = (DatasetError, CheckpointError, OptionsError, LPIPSWeightsError, NoWSpaceError, MissingExtraError,
               NonFiniteOutputError)
