from __future__ import annotations

from confluent_kafka import KafkaException
from django.core.management.base import BaseCommand, CommandError

from streams.kafka.topics import all_topics, ensure_topics


class Command(BaseCommand):
    help = "Create every topic in the registry that does not exist yet (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only list the registered topics.")

    def handle(self, *args, dry_run: bool, **options) -> None:
        if dry_run:
            for topic in all_topics():
                self.stdout.write(f"{topic.logical:<22} {topic.name:<24} partitions={topic.partitions}")
            return
        try:
            created, existing = ensure_topics()
        except KafkaException as exc:
            raise CommandError(f"Kafka is not reachable or refused: {exc}") from exc
        for name in created:
            self.stdout.write(f"created {name}")
        self.stdout.write(self.style.SUCCESS(
            f"{len(created)} topic(s) created, {len(existing)} already present"
        ))
