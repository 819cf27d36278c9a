"""Watch the inbox and announce each complete file on `file_events`.

Called by: the Procfile's watcher process. Announcing is services.inbox_publish;
this command only decides when a changed file has settled.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.core.management.base import BaseCommand, CommandError
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ingest.inbox import inbox_dir
from ingest.services import inbox_publish

logger = logging.getLogger(__name__)


class _Recorder(FileSystemEventHandler):
    """Remembers which paths changed; the main loop decides when they are complete."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed: dict[str, float] = {}

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        path = getattr(event, "dest_path", "") or event.src_path
        with self.lock:
            self.changed[str(path)] = time.monotonic()

    def due(self, settle: float) -> list[str]:
        now = time.monotonic()
        with self.lock:
            ready = [p for p, seen in self.changed.items() if now - seen >= settle]
            for p in ready:
                del self.changed[p]
        return ready

    def again(self, paths: list[str]) -> None:
        with self.lock:
            for p in paths:
                self.changed.setdefault(p, time.monotonic())


class Command(BaseCommand):
    help = ("Watch the inbox (INGEST_INBOX_DIR) and publish {file_path, file_name} to file_events once a "
            "file is complete (unchanged for INGEST_SETTLE_SECONDS). Files named .* or *.part/*.tmp are ignored.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Scan the inbox once, publish, and exit.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Only list what would be published (implies --once).")
        parser.add_argument("--settle", type=float, default=None,
                            help="Seconds a file must stay unchanged before it is published "
                                 "(default INGEST_SETTLE_SECONDS).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["settle"] is not None:
            settings.INGEST_SETTLE_SECONDS = options["settle"]
        settle = settings.INGEST_SETTLE_SECONDS
        root = inbox_dir()
        if options["once"] or options["dry_run"]:
            result = inbox_publish(dry_run=options["dry_run"])
            verb = "would publish" if options["dry_run"] else "published"
            for path in result.published:
                self.stdout.write(f"{verb} {path}")
            self.stdout.write(self.style.SUCCESS(
                f"{len(result.published)} file(s) {verb}, {len(result.pending)} still being written, "
                f"{result.skipped} already announced"))
            return

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        recorder = _Recorder()
        observer = Observer()
        observer.schedule(recorder, str(root), recursive=True)
        observer.start()
        self.stdout.write(f"watching {root} (settle {settle:g}s)")
        published = 0
        try:
            first = inbox_publish()  # what arrived while nobody watched
            published += len(first.published)
            recorder.again([str(root / p) for p in first.pending])
            failures = 0
            while not stop.wait(0.25):
                due = recorder.due(settle)
                if not due:
                    continue
                try:
                    result = inbox_publish(paths=[Path(p) for p in due])
                except Exception as exc:  # Kafka or PostgreSQL away: keep the files, try again later
                    failures += 1
                    delay = min(2.0 ** failures, 30.0)
                    logger.warning("inbox_watcher_retry files=%d in=%.0fs error=%s", len(due), delay, exc)
                    recorder.again(due)
                    connection.close()
                    stop.wait(delay)
                    continue
                failures = 0
                for path in result.published:
                    self.stdout.write(f"published {path}")
                published += len(result.published)
                recorder.again([str(root / p) for p in result.pending])
        except Exception as exc:
            raise CommandError(f"the inbox watcher stopped: {exc}") from exc
        finally:
            observer.stop()
            observer.join(timeout=5)
        self.stdout.write(self.style.SUCCESS(f"stopped cleanly; {published} file(s) published"))
