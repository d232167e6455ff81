"""The exceptions nuggy raises for anything a caller can get wrong.

Every one is a :class:`NuggyError`, and each message names the file, field or value at fault
and the fix. They also derive from the built-in type the same mistake raised before (a bad
value is a ``ValueError``, a missing file a ``FileNotFoundError``, an unwritable output an
``OSError``), so code that catches those keeps working::

    NuggyError
    ├── UsageError (ValueError)            a bad option, argument or combination of them
    │   ├── ConfigError                    a PipelineConfig field out of range (``.field``)
    │   ├── MissingFileError (FileNotFoundError)   a file named by an option does not exist
    │   └── UnknownModelError (KeyError)   nuggy.registry: a model name that is not registered
    ├── ImageError (ValueError)            an input image cannot be read or used
    │   └── TrimapError                    nuggy.pipeline.trimap: a user trimap is unusable
    ├── OutputError (OSError)              an output cannot be written
    └── ModelSourceError                   nuggy.sources: a model file cannot be fetched or found

The command line turns a :class:`UsageError` into exit status 2 before any image is read; the
HTTP API answers 422 (usage) or 415 (image).
"""

from __future__ import annotations

__all__ = [
    "NuggyError",
    "UsageError",
    "ConfigError",
    "MissingFileError",
    "ImageError",
    "OutputError",
]


class NuggyError(Exception):
    """Base of every error nuggy raises for a bad input, option, model or output."""


class UsageError(NuggyError, ValueError):
    """A bad option, argument, or combination of them (the command line exits with 2)."""


class ConfigError(UsageError):
    """A :class:`~nuggy.pipeline.config.PipelineConfig` field has a bad value.

    Attributes:
        field: the field's name (``refine_radius``); the CLI flag is the same with dashes.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MissingFileError(UsageError, FileNotFoundError):
    """A file named by an option (weights, checkpoint, trimap, background) does not exist."""

    def __str__(self) -> str:  # OSError formats (errno, strerror) pairs; keep the message
        return str(self.args[0]) if self.args else "file not found"


class ImageError(NuggyError, ValueError):
    """An input image cannot be read or used (corrupt, truncated, unsupported, too large or
    too small); the message names the file."""


class OutputError(NuggyError, OSError):
    """An output cannot be written (unknown format, not a folder, no permission, disk full);
    the message names the path."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cannot write the output"
