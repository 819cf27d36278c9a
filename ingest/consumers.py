"""The ingest app's consumers, registered by name for `run_consumer NAME`: one, `files`.

Like streams/consumers.py, a map: each registration names the module whose
steps decode and handle a batch (file_events.py). Discovered by the registry
(streams.kafka.registry), which imports every installed app's `consumers`.
"""

from streams.kafka.registry import ConsumerSpec, Pipeline, register

from . import file_events

register(ConsumerSpec(
    name="files",
    pipeline=Pipeline("files", "File ingestion", "admin:ingest_ingestedfile_changelist", order=10),
    topics=("file_events",),
    decode=file_events.decode,
    handle_batch=file_events.handle_batch,
    dead_letter_topic="dead_letters",
    writes=("ingest.IngestedFile",),
    queues=("ingest.process_file",),
    description="file_events -> registered files (inbox-checked) -> Celery process_file.",
))
