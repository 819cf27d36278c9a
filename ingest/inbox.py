"""The inbox and quarantine directories, and safe path resolution.

Called by: ingest's services (scan, registration, quarantine), the `files`
consumer (pure path checks), the API (upload names), `manage.py watch_inbox`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath

from django.conf import settings

HASH_BLOCK = 1024 * 1024
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp")
# Linux limits: a path (PATH_MAX 4096, less the inbox's own) and one name (NAME_MAX 255).
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255


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
    try:
        encoded = file_path.encode("utf-8")
    except UnicodeEncodeError:
        raise PathRejected("file_path is not valid Unicode (a lone surrogate)", "path") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise PathRejected(f"file_path is too long: {len(encoded):,} bytes, the limit is {MAX_PATH_BYTES:,}",
                           "too_long")
    longest = max((len(part.encode("utf-8")) for part in parts), default=0)
    if longest > MAX_NAME_BYTES:
        raise PathRejected(f"a name in file_path is too long for the filesystem: {longest:,} bytes, "
                           f"the limit is {MAX_NAME_BYTES}", "too_long")
    return str(PurePosixPath(*parts))


def resolve_in_inbox(file_path: str) -> Path:
    """The real file behind an announced path, strictly inside the inbox
    (symlinks are followed, then the target must still be inside)."""
    relative = check_relative_path(file_path)
    try:
        return _resolve(relative)
    except OSError as exc:  # too long, too many links, permission denied...: a reason, never a crash
        raise PathRejected(f"{relative[:200]!r} cannot be opened: {exc.strerror or exc}", "unreadable") from None


def _resolve(relative: str) -> Path:
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
    if not os.access(resolved, os.R_OK):
        raise PathRejected(f"{relative!r} is not readable by the console (permissions)", "unreadable")
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


def is_candidate(path: Path) -> bool:
    """Files the watcher announces: visible, not a writer's temporary name."""
    name = path.name
    return not name.startswith(".") and not name.lower().endswith(IGNORED_SUFFIXES)


def safe_file_name(name: str) -> str:
    """A file name safe to create in the inbox (no directories, no odd bytes)."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    return base[:200] or "upload.csv"
