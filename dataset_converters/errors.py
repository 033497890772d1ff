"""Errors raised by dataset readers. Messages name the bad value and where it came from
(dataset root, table, token, file)."""

from __future__ import annotations


class DatasetError(ValueError):
    """Base class: a dataset on disk is missing, incomplete or malformed, or an argument
    (version, scene name) does not match it."""


class PcdError(DatasetError):
    """A PCD point-cloud file cannot be parsed (header, field types, data size)."""
