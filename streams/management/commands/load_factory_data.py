from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streams.report.loader import factory_data_load


class Command(BaseCommand):
    help = ("Load the factory challenge data (metrics.json, workorder.json) into the telemetry tables, "
            "upserting on the natural keys (a second load changes nothing).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", nargs="?", default=None,
                            help="Folder with metrics.json and workorder.json (default settings.FACTORY_DATA_DIR).")
        parser.add_argument("--scale", type=int, default=1,
                            help="Load N time-shifted copies of the data (benchmarks; default 1).")
        parser.add_argument("--dry-run", action="store_true", help="Validate and count, write nothing.")

    def handle(self, *args, directory: str | None, scale: int, dry_run: bool, **options) -> None:
        folder = Path(directory or settings.FACTORY_DATA_DIR)
        files = {name: folder / f"{name}.json" for name in ("metrics", "workorder")}
        data = {}
        for name, path in files.items():
            if not path.is_file():
                raise CommandError(f"{path} does not exist (give the folder holding metrics.json and workorder.json)")
            try:
                data[name] = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CommandError(f"{path} is not valid JSON: {exc}") from None
            if not isinstance(data[name], list):
                raise CommandError(f"{path} must hold a JSON array")
        if scale < 1:
            raise CommandError("--scale must be >= 1")
        result = factory_data_load(metrics=data["metrics"], workorders=data["workorder"], scale=scale,
                                   dry_run=dry_run)
        for bad in result.invalid[:20]:
            self.stderr.write(f"skipped {bad['file']}[{bad['index']}]: {bad['reason']}")
        verb = "would load" if dry_run else "loaded"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {result.metrics} metrics and {result.workorders} work-order readings "
            f"({len(result.invalid)} invalid skipped) from {folder}"
        ))
