from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streams.kafka.registry import consumers, get_consumer
from streams.kafka.runtime import RunOptions, run
from streams.kafka.topics import topic_name


class Command(BaseCommand):
    help = (
        "Run a registered Kafka consumer until SIGTERM/SIGINT. Start more processes "
        "with the same NAME to share its partitions (one consumer group)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="Consumer to run (see --list).")
        parser.add_argument("--list", action="store_true", help="List the registered consumers and exit.")
        parser.add_argument(
            "--batch-size", type=int, default=None,
            help=f"Most messages per batch/transaction (default {settings.CONSUMER_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--batch-time", type=int, default=None, metavar="MS",
            help=f"Longest wait in ms before a partial batch is applied (default {settings.CONSUMER_BATCH_TIME_MS}).",
        )
        parser.add_argument(
            "--from", dest="offset_reset", choices=["earliest", "latest"], default="earliest",
            help="Where a new consumer group starts reading (default earliest).",
        )
        parser.add_argument(
            "--instance-id", default=None, metavar="ID",
            help="A stable id for this replica (static group membership: restarted with the same id, "
                 "it takes its partitions back at once). `{hostname}` is replaced by the host's name. "
                 "Default CONSUMER_INSTANCE_ID; none: a dynamic member.",
        )
        parser.add_argument(
            "--healthcheck-file", default=None, metavar="PATH",
            help="Touch this file at most once a second while healthy (a liveness probe for containers).",
        )

    def handle(self, *args, name: str | None, list: bool, batch_size: int | None,
               batch_time: int | None, offset_reset: str, healthcheck_file: str | None,
               instance_id: str | None, **options) -> None:
        if list:
            for spec in consumers().values():
                topics = ", ".join(topic_name(t) for t in spec.topics)
                self.stdout.write(
                    f"{spec.name:<15} group={spec.group_id():<30} topics={topics:<34} "
                    f"dead-letters={topic_name(spec.dead_letter_topic)}  {spec.description}"
                )
            return
        if not name:
            raise CommandError("Name a consumer to run, or use --list to see them.")
        try:
            spec = get_consumer(name)
        except KeyError as exc:
            raise CommandError(str(exc.args[0])) from exc
        run_options = RunOptions(
            batch_size=batch_size or settings.CONSUMER_BATCH_SIZE,
            batch_time_ms=batch_time if batch_time is not None else settings.CONSUMER_BATCH_TIME_MS,
            auto_offset_reset=offset_reset,
            healthcheck_file=healthcheck_file,
            instance_id=instance_id if instance_id is not None else settings.CONSUMER_INSTANCE_ID,
        )
        if run_options.batch_size < 1 or run_options.batch_time_ms < 1:
            raise CommandError("--batch-size and --batch-time must be positive.")
        totals = run(spec, run_options)
        self.stdout.write(self.style.SUCCESS(
            f"consumer {name} stopped cleanly: {totals['messages']} messages in {totals['batches']} "
            f"batches, {totals['applied']} applied, {totals['rejected']} dead-lettered"
        ))
