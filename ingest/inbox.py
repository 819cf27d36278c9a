"""The inbox and quarantine directories, and safe path resolution."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath

from django.conf import settings

HASH_BLOCK = 1024 * 1024
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp")


class PathRejected(Exception):
    """A file path from a message that must not be followed, with the reason."""

    def __init__(self, reason: str, rule: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule


def inbox_dir() -> Path:
    path = Path(settings.INGEST_INBOX_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def quarantine_dir() -> Path:
    path = Path(settings.INGEST_QUARANTINE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def check_relative_path(file_path: str) -> str:
    """Pure checks on an announced path; returns it normalised (POSIX, relative)."""
    if not file_path or not file_path.strip():
        raise PathRejected("file_path is empty", "path")
    if "\x00" in file_path:
        raise PathRejected("file_path contains a NUL byte", "path")
    if file_path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", file_path):
        raise PathRejected(f"file_path must be relative to the inbox, got the absolute path {file_path[:200]!r}",
                           "absolute_path")
    parts = PurePosixPath(file_path.replace("\\", "/")).parts
    if ".." in parts:
        raise PathRejected(f"file_path must not contain '..': {file_path[:200]!r}", "parent_path")
    return str(PurePosixPath(*parts))


def resolve_in_inbox(file_path: str) -> Path:
    """The real file behind an announced path, strictly inside the inbox
    (symlinks are followed, then the target must still be inside)."""
    relative = check_relative_path(file_path)
    root = inbox_dir()
    candidate = root / relative
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise PathRejected(f"{relative!r} leads out of the inbox (symlink to {str(resolved)[:200]!r})",
                           "outside_inbox")
    if not resolved.exists():
        raise PathRejected(f"{relative!r} does not exist in the inbox", "missing")
    if not resolved.is_file():
        raise PathRejected(f"{relative!r} is not a regular file", "not_a_file")
    suffixes = tuple(s.lower() for s in settings.INGEST_FILE_SUFFIXES)
    if not resolved.name.lower().endswith(suffixes):
        raise PathRejected(f"{relative!r} is not a CSV file (accepted: {', '.join(suffixes)})", "not_csv")
    size = resolved.stat().st_size
    if size > settings.INGEST_MAX_FILE_BYTES:
        raise PathRejected(
            f"{relative!r} is too large: {size:,} bytes, the limit is {settings.INGEST_MAX_FILE_BYTES:,}",
            "too_large",
        )
    return resolved


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def relative_to_inbox(path: Path) -> str:
    return path.relative_to(inbox_dir()).as_posix()


def is_candidate(path: Path) -> bool:
    """Files the watcher announces: visible, not a writer's temporary name."""
    name = path.name
    return not name.startswith(".") and not name.lower().endswith(IGNORED_SUFFIXES)


def safe_file_name(name: str) -> str:
    """A file name safe to create in the inbox (no directories, no odd bytes)."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    return base[:200] or "upload.csv"


def free_path(directory: Path, name: str) -> Path:
    """`directory/name`, or `name-1`, `name-2`... if that is taken."""
    target = directory / name
    stem, suffix = os.path.splitext(name)
    n = 1
    while target.exists() or target.is_symlink():
        target = directory / f"{stem}-{n}{suffix}"
        n += 1
    return target
