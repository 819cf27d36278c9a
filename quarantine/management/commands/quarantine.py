"""`manage.py quarantine list|show|release|reprocess|discard|purge`: the
console's quarantine actions from the shell (same services as the admin).

Called by: operators, from the shell. Bulk verbs call services.quarantine_bulk_action;
a reprocess with an edited payload or file calls services.quarantine_reprocess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from console.audit import ActionError
from quarantine import selectors, services
from quarantine.models import QuarantineRecord
from quarantine.sources import FILE_RELEASE_MODES


class Command(BaseCommand):
    help = "Review and act on quarantined files, messages and tasks (list, show, release, reprocess, discard, purge)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, title="subcommands")

        listing = sub.add_parser("list", help="List records, newest first.")
        self._selection_options(listing)
        listing.add_argument("--limit", type=int, default=50, help="Show at most this many (default 50).")

        show = sub.add_parser("show", help="Show one record with its errors and audit trail.")
        show.add_argument("id", type=int, help="Record id.")

        for name, text in (("release", "Release records (re-drive / re-queue / load)."),
                           ("reprocess", "Run records through their pipeline again, optionally corrected."),
                           ("discard", "Discard records (the original is kept for the retention period).")):
            action = sub.add_parser(name, help=text)
            action.add_argument("ids", type=int, nargs="*", help="Record ids (or use --all with filters).")
            action.add_argument("--all", action="store_true", dest="all_matching",
                                help="Act on every record matching the filters (default: open records).")
            self._selection_options(action)
            action.add_argument("--user", required=True, help="Username acting (needs the matching permission).")
            action.add_argument("--reason", default="", help="Why (required for discard and --mode as_is).")
            action.add_argument("--dry-run", action="store_true", help="Show what would happen; change nothing.")
            if name == "release":
                action.add_argument("--mode", choices=FILE_RELEASE_MODES, default="valid_rows",
                                    help="Files: load the valid rows (default) or every row as-is.")
            if name == "reprocess":
                action.add_argument("--payload", help="Messages/tasks: the edited payload (one record only).")
                action.add_argument("--payload-file", type=Path, help="Read the edited payload from this file.")
                action.add_argument("--file", type=Path, dest="content_file",
                                    help="Files: a corrected file to run instead of the original (one record only).")

        purge = sub.add_parser("purge", help="Purge discarded originals whose retention period ended.")
        purge.add_argument("--dry-run", action="store_true", help="List what would be purged; change nothing.")

    @staticmethod
    def _selection_options(parser: CommandParser) -> None:
        parser.add_argument("--source", choices=QuarantineRecord.Source.values, help="Only this source.")
        parser.add_argument("--status", choices=QuarantineRecord.Status.values, help="Only this status.")
        parser.add_argument("--topic", help="Only messages from this topic.")
        parser.add_argument("--reason-contains", help="Only records whose reason contains this text.")

    # ------------------------------------------------------------------

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        getattr(self, f"handle_{subcommand}")(**options)

    def _filtered(self, options: dict[str, Any]) -> QuerySet[QuarantineRecord]:
        records = QuarantineRecord.objects.all()
        if options.get("source"):
            records = records.filter(source=options["source"])
        if options.get("status"):
            records = records.filter(status=options["status"])
        if options.get("topic"):
            records = records.filter(topic=options["topic"])
        if options.get("reason_contains"):
            records = records.filter(reason__icontains=options["reason_contains"])
        return records

    def handle_list(self, **options: Any) -> None:
        records = self._filtered(options)
        total = records.count()
        for r in records[: options["limit"]]:
            self.stdout.write(f"{r.pk:>7}  {r.source:<7}  {r.status:<11}  replays={r.replay_count}  "
                              f"{r.created_at:%Y-%m-%d %H:%M}  {r.origin}  {r.reason[:80]}")
        self.stdout.write(self.style.SUCCESS(f"{min(total, options['limit'])} of {total} record(s) shown"))

    def handle_show(self, *, id: int, **options: Any) -> None:
        record = self._get(id)
        fields = ["source", "status", "reason", "error_count", "replay_count", "origin", "created_at",
                  "consumer", "topic", "partition", "offset", "file_name", "file_path", "checksum",
                  "task_name", "task_id", "resolved_at", "resolved_by", "discard_reason", "retain_until", "purged_at"]
        self.stdout.write(f"record #{record.pk}")
        for name in fields:
            value = getattr(record, name)
            if value not in (None, ""):
                self.stdout.write(f"  {name}: {value}")
        if record.payload is not None:
            self.stdout.write(f"  payload: {record.payload_text(limit=2000)}")
        self.stdout.write(f"errors ({record.error_count}):")
        for error in (record.errors or [])[:50]:
            shown = {k: v for k, v in error.items() if k != "traceback"} if isinstance(error, dict) else error
            self.stdout.write(f"  {json.dumps(shown, ensure_ascii=False, default=str)}")
        self.stdout.write("audit trail:")
        for entry in selectors.record_audit_entries(record=record):
            self.stdout.write(f"  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.actor_name}  {entry.action}  "
                              f"{entry.outcome}  {entry.reason}  {json.dumps(entry.detail, default=str)[:200]}")

    def _get(self, pk: int) -> QuarantineRecord:
        try:
            return QuarantineRecord.objects.get(pk=pk)
        except QuarantineRecord.DoesNotExist:
            raise CommandError(f"no quarantine record #{pk}") from None

    def _user(self, username: str, action: str):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        if not selectors.user_can(user, action):
            raise CommandError(f"user {username!r} lacks the permission quarantine.{action}_quarantinerecord")
        return user

    def _selection(self, options: dict[str, Any]) -> QuerySet[QuarantineRecord]:
        if options["ids"]:
            missing = set(options["ids"]) - set(
                QuarantineRecord.objects.filter(pk__in=options["ids"]).values_list("pk", flat=True))
            if missing:
                raise CommandError(f"no quarantine record(s) {', '.join(f'#{m}' for m in sorted(missing))}")
            return self._filtered(options).filter(pk__in=options["ids"])
        if not options["all_matching"]:
            raise CommandError("give record ids, or --all (with filters) to act on every matching record")
        records = self._filtered(options)
        return records if options.get("status") else records.filter(status=QuarantineRecord.Status.OPEN)

    def _act(self, action: str, options: dict[str, Any]) -> None:
        user = self._user(options["user"], action)
        records = self._selection(options)
        reason = options["reason"]
        if action == "discard" and not reason.strip():
            raise CommandError("--reason is required to discard")
        if action == "reprocess" and self._edits(options):
            result = self._reprocess_edited(records, user, options)
        else:
            result = services.quarantine_bulk_action(action=action, records=records, by=user, reason=reason,
                                                     mode=options.get("mode") or "valid_rows",
                                                     dry_run=options["dry_run"])
        for r in result.results:
            style = self.style.ERROR if r.outcome in ("refused", "failed") else (lambda s: s)
            self.stdout.write(style(f"#{r.record_id}: {r.outcome}: {r.message}"))
        problems = [r for r in result.results if r.outcome in ("refused", "failed")]
        if problems and len(problems) == len(result.results):
            raise CommandError(result.summary())
        self.stdout.write(self.style.SUCCESS(result.summary()))

    @staticmethod
    def _edits(options: dict[str, Any]) -> bool:
        return (options.get("payload") is not None or bool(options.get("payload_file"))
                or bool(options.get("content_file")))

    def _reprocess_edited(self, records, user, options: dict[str, Any]) -> services.BulkResult:
        """An edited payload or a corrected file: a one-record action, reported like a bulk one."""
        payload: bytes | None = None
        if options.get("payload") is not None:
            payload = options["payload"].encode()
        elif options.get("payload_file"):
            payload = options["payload_file"].read_bytes()
        content = _file_chunks(options["content_file"]) if options.get("content_file") else None
        selected = list(records[:2])
        if len(selected) != 1:
            raise CommandError("--payload/--payload-file/--file apply to exactly one record")
        result = services.BulkResult(action="reprocess")
        try:
            result.results.append(services.quarantine_reprocess(
                record=selected[0], by=user, reason=options["reason"], payload=payload, content=content,
                dry_run=options["dry_run"]))
        except ActionError as exc:
            result.results.append(services.ActionResult(selected[0].pk, "reprocess", exc.outcome, exc.message))
        return result

    def handle_release(self, **options: Any) -> None:
        self._act("release", options)

    def handle_reprocess(self, **options: Any) -> None:
        self._act("reprocess", options)

    def handle_discard(self, **options: Any) -> None:
        self._act("discard", options)

    def handle_purge(self, *, dry_run: bool, **options: Any) -> None:
        ids = services.quarantine_purge_expired(dry_run=dry_run)
        verb = "would purge" if dry_run else "purged"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {len(ids)} record(s)' originals" + (f": {', '.join(f'#{i}' for i in ids)}" if ids else "")))


def _file_chunks(path, size: int = 1024 * 1024):
    """A corrected file as chunks, so the service streams it instead of reading it whole."""
    with open(path, "rb") as source:
        while chunk := source.read(size):
            yield chunk
