"""The one error type of the data pipeline."""


class DatasetError(ValueError):
    """A dataset cannot be used as given; the message says what is wrong and what to do."""
