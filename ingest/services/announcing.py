"""Announcing: a complete file in the inbox becomes a `file_events` message.

Two ways in: the inbox scan (the watcher, and the periodic catch-all task) and
an upload through the API, written into the inbox first. The inbox remembers
what it announced (InboxEntry), so a file is announced once per content.

Called by: `manage.py watch_inbox`, the `ingest.scan_inbox` task, the upload
API; quarantine_source.py announces a file sent back through the pipeline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from streams.kafka import tracing
from streams.kafka.producer import Outbound, action_ack_timeout, publish_and_wait
from streams.kafka.registry import Source, register_source
from streams.kafka.topics import topic_name

from ..inbox import inbox_dir, is_candidate, safe_file_name, sha256_of
from ..models import InboxEntry, IngestedFile

logger = logging.getLogger(__name__)

# The two ways in, as the pipeline map draws them (console/ops/topology.py); the periodic
# scan is a Celery task, declared in ingest/tasks.py.
register_source(Source("watch_inbox", "watcher", "Inbox watcher", produces=("file_events",),
                       writes=("ingest.InboxEntry",), pipeline="files"))
register_source(Source("api:files", "upload", "POST /api/files/ (upload)", produces=("file_events",),
                       writes=("ingest.InboxEntry",), pipeline="files", link="/api/files/"))
Status = IngestedFile.Status


def file_event(*, file_path: str, file_name: str) -> Outbound:
    """The seed's `file_events` message; keyed by path so one file stays on one partition.
    Each announcement starts its file's trace (below the upload request's, if any)."""
    context = tracing.event_context("announce file", attributes={"console.file_path": file_path[:200]})
    return Outbound(topic=topic_name("file_events"), value={"file_path": file_path, "file_name": file_name},
                    key=file_path, headers=[(tracing.TRACEPARENT, context.encode())])


def publish_events(events: list[Outbound]) -> None:
    if events:
        publish_and_wait(events, timeout=action_ack_timeout())


def remember_announced(*, rel: str, stat: os.stat_result, checksum: str) -> None:
    InboxEntry.objects.update_or_create(
        path=rel, defaults={"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "checksum": checksum}
    )


@dataclass
class ScanResult:
    published: list[str]
    pending: list[str]  # seen but not complete yet (still being written)
    skipped: int


def inbox_publish(*, paths: Iterable[pathlib.Path] | None = None, dry_run: bool = False) -> ScanResult:
    """Announce complete, new files of the inbox on `file_events`.

    A file is complete once its mtime is INGEST_SETTLE_SECONDS old; it is
    announced once per content: never again while the same path and checksum
    is known (unless it was quarantined or failed and has been dropped back)."""
    root = inbox_dir()
    candidates = list(paths) if paths is not None else _walk(root)
    settle = settings.INGEST_SETTLE_SECONDS
    now = time.time()
    events: list[Outbound] = []
    remember: list[tuple[str, os.stat_result, str]] = []
    pending: list[str] = []
    skipped = 0
    for path in candidates:
        path = pathlib.Path(path)
        if not path.is_absolute():
            path = root / path
        if not is_candidate(path):
            continue
        try:
            stat = path.stat()
            rel = path.relative_to(root).as_posix()
        except (OSError, ValueError):
            continue
        if not path.is_file():
            continue
        if now - stat.st_mtime < settle:
            pending.append(rel)
            continue
        entry = InboxEntry.objects.filter(path=rel).first()
        if entry and entry.size == stat.st_size and entry.mtime_ns == stat.st_mtime_ns:
            skipped += 1
            continue
        checksum = ""
        hashable = (stat.st_size <= settings.INGEST_MAX_FILE_BYTES
                    and path.name.lower().endswith(tuple(s.lower() for s in settings.INGEST_FILE_SUFFIXES)))
        if hashable:
            try:
                checksum = sha256_of(path)
            except OSError as exc:
                # Announced anyway: the files consumer rejects it with the reason (a quarantine record).
                logger.warning("ingest_scan_unreadable path=%s error=%s", rel, exc)
                events.append(file_event(file_path=rel, file_name=path.name))
                remember.append((rel, stat, ""))
                continue
            known = IngestedFile.objects.filter(path=rel, checksum=checksum).exclude(
                status__in=[Status.QUARANTINED, Status.FAILED]).exists()
            if known or (entry and entry.checksum == checksum):
                skipped += 1
                if not dry_run:
                    remember_announced(rel=rel, stat=stat, checksum=checksum)
                continue
        events.append(file_event(file_path=rel, file_name=path.name))
        remember.append((rel, stat, checksum))
    if not dry_run:
        publish_events(events)
        for rel, stat, checksum in remember:
            remember_announced(rel=rel, stat=stat, checksum=checksum)
    return ScanResult(published=[e.value["file_path"] for e in events], pending=pending, skipped=skipped)


def _walk(root: pathlib.Path) -> list[pathlib.Path]:
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [pathlib.Path(directory) / f for f in files]
    return found


def file_upload(*, content: Iterable[bytes], file_name: str, by: Any = None) -> dict[str, Any]:
    """Store an upload in the inbox (under uploads/) and announce it.

    Written under a temporary name and renamed when complete, so the watcher
    never sees half a file. Returns the published event plus size and checksum."""
    name = safe_file_name(file_name)
    directory = inbox_dir() / "uploads"
    directory.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    target = directory / f"{stamp}-{uuid.uuid4().hex[:6]}-{name}"
    temporary = directory / f".{target.name}.part"
    digest, size = hashlib.sha256(), 0
    with open(temporary, "wb") as fh:
        for chunk in content:
            digest.update(chunk)
            size += len(chunk)
            fh.write(chunk)
    os.replace(temporary, target)
    rel = target.relative_to(inbox_dir()).as_posix()
    publish_events([file_event(file_path=rel, file_name=name)])
    remember_announced(rel=rel, stat=target.stat(), checksum=digest.hexdigest())
    logger.info("ingest_upload path=%s size=%d by=%s", rel, size, getattr(by, "username", by))
    return {"file_path": rel, "file_name": name, "size": size, "checksum": digest.hexdigest()}
