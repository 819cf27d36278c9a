"""Fixtures for file ingestion: a private inbox and quarantine directory per test."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

SAMPLES = Path("/work/shared/data/sensors")
if not SAMPLES.is_dir():  # CI clones the repository with shared/ beside it
    SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "sensors"

HEADER = '"ts","device","co","humidity","light","lpg","motion","smoke","temp"\n'
ROW = '"1.5945120943859746E9","b8:27:eb:bf:9d:51","0.0049559386483912","51.0","False","0.0076508222705571","False","0.0204112701224129","22.7"\n'


def rows(n: int, *, start: float = 1594512094.0, device: str = "b8:27:eb:bf:9d:51") -> str:
    return "".join(
        f'"{start + i}","{device}","0.00{i % 9 + 1}","{40 + i % 50}.5","{"True" if i % 2 else "False"}",'
        f'"0.007","False","0.02","{20 + i % 10}.25"\n'
        for i in range(n)
    )


@dataclass
class Inbox:
    root: Path
    quarantine: Path

    def drop(self, name: str, content: bytes | str | Path) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        return name

    def env(self) -> dict[str, str]:
        return {"INGEST_INBOX_DIR": str(self.root), "INGEST_QUARANTINE_DIR": str(self.quarantine),
                "INGEST_SETTLE_SECONDS": "0.5"}

    def process(self, name: str):
        """The consumer's and the task's work, in this process. Inside a test's
        transaction nothing commits, so the on-commit steps (the move of a
        quarantined file) are run as a commit would run them."""
        from django.test import TestCase

        from ingest.services import file_process, file_register

        with TestCase.captureOnCommitCallbacks(execute=True):
            ingested = file_register(file_path=name, file_name=Path(name).name)
        with TestCase.captureOnCommitCallbacks(execute=True):
            result = file_process(file_id=ingested.id)
        result.refresh_from_db()
        return result


@pytest.fixture
def inbox(settings, tmp_path) -> Inbox:
    root, quarantine = tmp_path / "inbox", tmp_path / "quarantine"
    root.mkdir()
    quarantine.mkdir()
    settings.INGEST_INBOX_DIR = root
    settings.INGEST_QUARANTINE_DIR = quarantine
    settings.INGEST_SETTLE_SECONDS = 0.5
    return Inbox(root, quarantine)
