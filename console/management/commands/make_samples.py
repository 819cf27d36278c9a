"""`manage.py make_samples DIR`: write the sample data (console/demo/samples.py) to DIR."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from console.demo.samples import samples_write


class Command(BaseCommand):
    help = ("Write sample data to DIR: sensor CSV files in the contract's shape (one with broken rows) "
            "and a factory data set (metrics.json, workorder.json) with a planted correlation.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", help="Where to write (created if missing), e.g. .run/samples")
        parser.add_argument("--seed", type=int, default=2026, help="Random seed (default 2026: the same files everywhere).")

    def handle(self, *args, directory: str, seed: int, **options) -> None:
        for path in samples_write(Path(directory), seed=seed):
            self.stdout.write(f"wrote {path} ({path.stat().st_size:,} bytes)")
