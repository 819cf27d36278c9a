"""The file source quarantine calls (quarantine/sources.py; registered in
ingest/apps.py): where a quarantined file's original lies, which rows were
rejected, and how to release it (load it with the operator's mode) or
reprocess it (send it, or a corrected upload, through the pipeline again).

Called by: quarantine's services and selectors, through the registered FileSource.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import shutil
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db import transaction

from quarantine.models import QuarantineRecord
from quarantine.sources import FILE_RELEASE_MODES

from ..contract import Contract, FileRejected, RowStream, read_header
from ..inbox import PathRejected, inbox_dir, quarantine_dir, resolve_in_inbox
from ..models import IngestedFile
from .announcing import file_event, publish_events, remember_announced
from .processing import load_file
from .registration import reset_for_rerun

logger = logging.getLogger(__name__)
Status = IngestedFile.Status


def _file_of(record: QuarantineRecord) -> IngestedFile:
    ingested = IngestedFile.objects.filter(quarantine=record).order_by("-id").first()
    if ingested is None:
        ingested = IngestedFile.objects.filter(checksum=record.checksum, name=record.file_name).order_by("-id").first()
    if ingested is None or record.source != QuarantineRecord.Source.FILE:
        raise ValueError(f"quarantine record #{record.pk} is not a quarantined ingest file")
    return ingested


def quarantined_file_original(*, record: QuarantineRecord) -> pathlib.Path:
    """Where the quarantined original lies now: inside the quarantine directory, or
    still in the inbox if the process died between the record's commit and the move."""
    path = pathlib.Path(record.file_path).resolve()
    if not path.is_relative_to(quarantine_dir()):
        raise ValueError(f"quarantine record #{record.pk} points outside the quarantine directory")
    if not path.is_file():
        ingested = IngestedFile.objects.filter(quarantine=record).order_by("-id").first()
        if ingested is not None:
            try:
                return resolve_in_inbox(ingested.path)
            except PathRejected:
                pass
        raise FileNotFoundError(f"the quarantined file of record #{record.pk} is gone: {path}")
    return path


def quarantined_file_rejected_rows(*, record: QuarantineRecord) -> Iterator[str]:
    """CSV text lines: the header, then the rejected rows as they were in the file.
    The text is the file's own; a caller writing a spreadsheet download should
    neutralise formula-like cells itself."""
    path = quarantined_file_original(record=record)
    contract = Contract.from_settings()
    with open(path, "rb") as fh:
        first = fh.readline(settings.INGEST_MAX_LINE_BYTES + 1)
        fh.seek(0)
        try:
            header = read_header(fh, contract, max_line=settings.INGEST_MAX_LINE_BYTES)
        except FileRejected:
            # The header itself is what was rejected: it is the only line to show.
            yield first[: settings.INGEST_MAX_LINE_BYTES].removeprefix(b"\xef\xbb\xbf").decode(
                "utf-8", "replace").rstrip("\r\n")
            return
        yield first.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace").rstrip("\r\n")
        rejected: list[str] = []
        stream = RowStream(fh, header=header, contract=contract, load_after_errors=False,
                           on_rejected=lambda _line, raw: rejected.append(raw))
        while True:
            more = stream.step()
            yield from rejected
            rejected.clear()
            if not more:
                return


def quarantined_file_release(*, record: QuarantineRecord, by: Any, reason: str, mode: str) -> IngestedFile:
    """mode "valid_rows": load the valid rows, drop the bad ones; "as_is": load
    every row whose values parse, overriding range/format rules. Synchronous;
    the load is one transaction and a rerun with the same mode is a no-op.
    Does not change record.status (the caller does, and writes the audit)."""
    if mode not in FILE_RELEASE_MODES:
        raise ValueError(f"mode must be one of {', '.join(FILE_RELEASE_MODES)}, not {mode!r}")
    ingested = _file_of(record)
    source = quarantined_file_original(record=record)
    if ingested.status == Status.LOADED and ingested.release_mode == mode:
        return ingested
    if ingested.status == Status.LOADED and mode == "valid_rows" and not ingested.release_mode:
        # Partially accepted already: exactly the valid rows are loaded.
        IngestedFile.objects.filter(id=ingested.id).update(release_mode=mode)
        ingested.refresh_from_db()
        return ingested
    who = getattr(by, "get_username", lambda: str(by))()
    return load_file(ingested, source, strict=(mode == "valid_rows"), partial=True, max_rejected_share=1.0,
                 release_mode=mode, release_note=f"released ({mode}) by {who}: {reason}")


def _spool(chunks: Iterable[bytes], directory: pathlib.Path) -> tuple[pathlib.Path, str]:
    """Write `chunks` to a hidden file in `directory`, hashing them on the way: (path, sha256).
    A corrected upload is never held whole in memory."""
    digest = hashlib.sha256()
    temporary = directory / f".reprocess-{uuid.uuid4().hex}.part"
    try:
        with temporary.open("wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary, digest.hexdigest()


def _chunks_of(content: Any) -> Iterable[bytes]:
    """bytes, an uploaded file (its chunks) or an iterable of byte chunks, as chunks."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        return [bytes(content)]
    if hasattr(content, "chunks"):
        return content.chunks()
    return content


def quarantined_file_reprocess(*, record: QuarantineRecord, by: Any, content: Any = None) -> IngestedFile:
    """Run the file through the normal pipeline again (inbox -> file_events ->
    files consumer -> task). With `content` (bytes, an uploaded file or an
    iterable of chunks, written to disk as it comes), a corrected upload takes
    the original's place in the inbox (the quarantined original is kept for
    the audit); without, the original moves back."""
    ingested = _file_of(record)
    if ingested.status in IngestedFile.IN_PROGRESS:
        return ingested
    original = quarantined_file_original(record=record) if content is None else None
    root = inbox_dir()
    wanted = root / ingested.path
    wanted.parent.mkdir(parents=True, exist_ok=True)
    spooled = None
    if content is not None:
        spooled, checksum = _spool(_chunks_of(content), wanted.parent)
    else:
        checksum = ingested.checksum
    stem, suffix = os.path.splitext(wanted.name)
    target, n = wanted, 1
    # A free name that no other registration of the same content holds (it must not be merged with it).
    while (target.exists() or target.is_symlink() or IngestedFile.objects.filter(
            path=target.relative_to(root).as_posix(), checksum=checksum).exclude(id=ingested.id).exists()):
        target, n = wanted.with_name(f"{stem}-{n}{suffix}"), n + 1
    if spooled is not None:
        os.replace(spooled, target)
    else:
        shutil.move(str(original), str(target))
    rel = target.relative_to(root).as_posix()
    with transaction.atomic():
        ingested.path, ingested.checksum = rel, checksum
        ingested.duplicate_of = None
        reset_for_rerun(ingested, size=target.stat().st_size)
        stat = target.stat()
        transaction.on_commit(lambda: (publish_events([file_event(file_path=rel, file_name=ingested.name)]),
                                       remember_announced(rel=rel, stat=stat, checksum=checksum)))
    logger.info("ingest_reprocess file=%s record=%s by=%s corrected=%s", ingested.id, record.pk,
                getattr(by, "username", by), content is not None)
    return ingested


def quarantined_file_describe(ingested: IngestedFile | None) -> dict[str, Any]:
    """What a quarantine audit entry keeps about a file released or reprocessed."""
    if ingested is None:
        return {}
    return {"id": ingested.pk, "status": ingested.status, "rows_total": ingested.rows_total,
            "rows_loaded": ingested.rows_loaded, "rows_valid": ingested.rows_valid,
            "rows_rejected": ingested.rows_rejected, "error_count": ingested.error_count}
