from django.apps import AppConfig


class IngestConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ingest"
    verbose_name = "File ingestion"

    def ready(self) -> None:
        # Quarantine asks the owner of a quarantined file what only the owner knows.
        from quarantine.sources import FileSource, register_file_source

        from . import services

        register_file_source(FileSource(
            original=services.quarantined_file_original,
            rejected_rows=services.quarantined_file_rejected_rows,
            release=services.quarantined_file_release,
            reprocess=services.quarantined_file_reprocess,
            describe=services.quarantined_file_describe,
        ))
