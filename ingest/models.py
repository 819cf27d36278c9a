"""File ingestion (seed 001): files seen in the inbox, their raw rows and statistics.

Called by: every module of ingest; console's metrics and the ops dashboard read them.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models.functions import Now

from quarantine.models import QuarantineRecord


class IngestedFile(models.Model):
    """One file announced on `file_events` and what became of it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        VALIDATING = "validating", "Validating"
        LOADING = "loading", "Loading"
        LOADED = "loaded", "Loaded"
        QUARANTINED = "quarantined", "Quarantined"
        DUPLICATE = "duplicate", "Duplicate"
        FAILED = "failed", "Failed"

    IN_PROGRESS = (Status.QUEUED, Status.VALIDATING, Status.LOADING)

    path = models.CharField(max_length=1024, help_text="Path relative to the inbox, as announced.")
    name = models.CharField(max_length=255, db_index=True)
    checksum = models.CharField(max_length=64, db_index=True, help_text="sha256 of the content.")
    size = models.BigIntegerField(default=0, help_text="Bytes.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    rows_total = models.BigIntegerField(default=0, help_text="Data rows read so far (all of them once done).")
    rows_valid = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    rows_loaded = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0, help_text="Bytes read so far (progress).")
    reason = models.CharField(max_length=500, blank=True, help_text="Why the file was not (fully) loaded.")
    errors = models.JSONField(default=list, blank=True, help_text="Line, column, value, rule (capped).")
    error_count = models.BigIntegerField(default=0, help_text="All errors, including those not kept.")
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    quarantine = models.ForeignKey(
        QuarantineRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="ingested_files"
    )
    release_mode = models.CharField(max_length=16, blank=True, help_text="Set when loaded by a release.")
    attempts = models.PositiveIntegerField(default=0, help_text="Processing attempts (task runs).")
    task_id = models.CharField(max_length=64, blank=True)
    trace_id = models.UUIDField(null=True, blank=True, db_index=True,
                                help_text="The W3C trace id of the announcement (watcher, upload, API).")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    load_seconds = models.FloatField(null=True, blank=True, help_text="Validate + COPY + aggregates.")
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per phase of the last run.")

    class Meta:
        ordering = ["-created_at", "-id"]
        # POST /api/files/ writes a file into the inbox (the row comes later, from the consumer).
        permissions = [("upload_file", "Can upload files to the inbox")]
        constraints = [
            # A replayed or doubly published event registers the file once.
            models.UniqueConstraint(fields=["path", "checksum"], name="ingestedfile_path_checksum"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def percent_done(self) -> int:
        if self.status in (self.Status.LOADED, self.Status.QUARANTINED, self.Status.DUPLICATE):
            return 100
        return min(int(100 * self.bytes_done / self.size), 99) if self.size else 0

    @property
    def progress(self) -> str:
        if self.status in (self.Status.LOADING, self.Status.VALIDATING):
            return f"{self.rows_total:,} rows read ({self.percent_done}%)"
        return f"{self.rows_loaded:,} / {self.rows_total:,} rows loaded"


class InboxEntry(models.Model):
    """What the watcher and the periodic scan already announced, so a file is
    published once per content (path + checksum), never twice."""

    path = models.CharField(max_length=1024, unique=True)
    size = models.BigIntegerField()
    mtime_ns = models.BigIntegerField()
    checksum = models.CharField(max_length=64)
    published_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "inbox entries"

    def __str__(self) -> str:
        return self.path


class RawSensorReading(models.Model):
    """A raw row of a sensor CSV, loaded with COPY. `recorded_at` is computed by
    PostgreSQL from `ts` so that time filters use a real timestamp.

    Named for its pipeline (files of raw sensor data, `/api/raw-sensor-data/`),
    apart from the activity pipeline's standardized `streams.SensorReading`."""

    # No database-level foreign key: PostgreSQL would check it once per row of a
    # COPY (deferred to the commit), which costs more than the COPY itself. Rows
    # are written only by the loader, for a file it has just locked.
    file = models.ForeignKey(IngestedFile, on_delete=models.DO_NOTHING, related_name="readings", db_index=False,
                             db_constraint=False)
    ts = models.FloatField(help_text="Epoch seconds as in the file.")
    recorded_at = models.GeneratedField(
        expression=models.Func(models.F("ts"), function="to_timestamp"),
        output_field=models.DateTimeField(),
        db_persist=True,
    )
    device = models.TextField()
    co = models.FloatField()
    humidity = models.FloatField()
    light = models.BooleanField()
    lpg = models.FloatField()
    motion = models.BooleanField()
    smoke = models.FloatField()
    temp = models.FloatField()

    class Meta:
        # The table kept its name when the model was renamed (migration 0006): no rows moved.
        db_table = "ingest_sensorreading"
        ordering = ["-id"]
        # BRIN, not B-tree: rows arrive file by file in time order, so block
        # ranges summarise them well, and a BRIN costs next to nothing on COPY
        # (a B-tree on (device, recorded_at) doubled the load time). Device
        # filters ride on these or on the primary key order.
        indexes = [
            # No B-tree at all, not even the primary key's (migration 0003): ids come from
            # the identity sequence in load order, and newest-first pages read id windows.
            BrinIndex(fields=["id"], name="sensorreading_id_brin", autosummarize=True),
            BrinIndex(fields=["file"], name="sensorreading_file_brin", autosummarize=True),
            BrinIndex(fields=["recorded_at"], name="sensorreading_time_brin", autosummarize=True),
        ]

    def __str__(self) -> str:
        return f"{self.device} @ {self.ts}"


class SensorAggregate(models.Model):
    """Statistics of one metric of one device: per file, or overall (file is null)."""

    file = models.ForeignKey(IngestedFile, null=True, blank=True, on_delete=models.CASCADE, related_name="aggregates")
    device = models.TextField()
    metric = models.CharField(max_length=32)
    count = models.BigIntegerField()
    min = models.FloatField(null=True)
    max = models.FloatField(null=True)
    mean = models.FloatField(null=True)
    std = models.FloatField(null=True, help_text="Sample standard deviation.")
    median = models.FloatField(null=True)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["device", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["file", "device", "metric"], name="sensoraggregate_key", nulls_distinct=False
            ),
        ]

    def __str__(self) -> str:
        scope = f"file {self.file_id}" if self.file_id else "overall"
        return f"{self.device} {self.metric} ({scope})"


class OverallRefreshPending(models.Model):
    """A device whose overall statistics wait for a refresh. Loads mark their
    devices here, in their own transaction; each refresh takes every device
    marked so far, so a burst of loads costs one or two scans of the raw
    table instead of one per file (ingest.services.aggregates_refresh)."""

    device = models.TextField(primary_key=True)
    requested_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return self.device
