"""What quarantine knows of the apps that quarantine things: a registry of sources.

Messages (dead letters of any consumer) and Celery tasks are built in. A file is
owned by the app that ingested it; that app registers a `FileSource` when Django
starts (ingest/apps.py), and quarantine calls it for what only the owner knows:
where the original lies, which rows were rejected, how to release or reprocess
it. So quarantine imports no app that registers a source.

The release modes of a file are defined here, once: the admin's forms, the
API, the `quarantine` command and the file's owner all read FILE_RELEASE_MODES.

Called by: quarantine's services and selectors; ingest/apps.py registers its files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .models import QuarantineRecord

# How a quarantined file may be released: "valid_rows" loads the rows that pass
# the contract and drops the rest; "as_is" loads every row whose values parse,
# overriding the range and format rules (an operator's reason is required).
FILE_RELEASE_MODES = ("valid_rows", "as_is")


@dataclass(frozen=True)
class FileSource:
    """The owner's handlers for quarantined files. Each takes the (locked) record."""

    original: Callable[..., Path]  # (*, record) -> path of the original
    rejected_rows: Callable[..., Iterator[str]]  # (*, record) -> header + rejected lines
    release: Callable[..., Any]  # (*, record, by, reason, mode: one of FILE_RELEASE_MODES) -> what was loaded
    reprocess: Callable[..., Any]  # (*, record, by, content) -> what was queued
    describe: Callable[[Any], dict[str, Any]]  # a release/reprocess result, for the audit entry


_file_source: FileSource | None = None


def register_file_source(source: FileSource) -> None:
    global _file_source
    _file_source = source


def file_source() -> FileSource | None:
    """The registered file source, or None (no app ingests files)."""
    return _file_source


def file_original(record: QuarantineRecord) -> Path | None:
    """The original of a quarantined file: asked of its owner; the recorded path otherwise."""
    source = _file_source
    if source is None:
        return Path(record.file_path) if record.file_path else None
    return Path(source.original(record=record))
