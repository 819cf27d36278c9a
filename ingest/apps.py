"""The ingest app's start-up: it registers its files with quarantine as a
FileSource (quarantine/sources.py), so quarantine can ask about a quarantined
file without importing ingest.

Called by: Django, when the app registry is ready.
"""

from django.apps import AppConfig


class IngestConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ingest"
    verbose_name = "File ingestion"

    def ready(self) -> None:
        # Quarantine asks the owner of a quarantined file what only the owner knows.
        from quarantine.sources import FileSource, register_file_source

        from .services import quarantine_source

        register_file_source(FileSource(
            original=quarantine_source.quarantined_file_original,
            rejected_rows=quarantine_source.quarantined_file_rejected_rows,
            release=quarantine_source.quarantined_file_release,
            reprocess=quarantine_source.quarantined_file_reprocess,
            describe=quarantine_source.quarantined_file_describe,
        ))
