"""What each running consumer process says about itself: the platform's one model (the runtime writes it)."""

from __future__ import annotations

from django.db import models


class ConsumerHeartbeat(models.Model):
    """One `run_consumer` process: its state, last error and counters, refreshed every few seconds.

    Written by streams.kafka.heartbeat; read by /healthz and the operations
    dashboard. A row whose `beat_at` is older than CONSUMER_HEARTBEAT_STALE_SECONDS
    belongs to a process that is gone (or cannot reach PostgreSQL).
    """

    class State(models.TextChoices):
        RUNNING = "running"
        WAITING = "waiting", "waiting (a dependency is down)"
        PAUSED = "paused", "paused (systemic failure)"
        STOPPED = "stopped"
        CRASHED = "crashed"

    consumer = models.CharField(max_length=100)
    member = models.CharField(max_length=200, help_text="host:pid of the process.")
    group_id = models.CharField(max_length=255)
    topics = models.JSONField(default=list)
    instance_id = models.CharField(max_length=255, blank=True,
                                   help_text="Static member's group.instance.id (empty: a dynamic member).")
    partitions = models.JSONField(default=list, blank=True,
                                  help_text="The partitions assigned to this member: [topic, partition] pairs.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    reason = models.TextField(blank=True, help_text="Why the consumer is waiting, paused or crashed.")
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(help_text="Last heartbeat.")
    last_batch_at = models.DateTimeField(null=True, blank=True)
    batches = models.BigIntegerField(default=0)
    messages = models.BigIntegerField(default=0)
    applied = models.BigIntegerField(default=0)
    dead_lettered = models.BigIntegerField(default=0)
    refused = models.BigIntegerField(default=0, help_text="Messages the database refused (dead-lettered).")
    batch_buckets = models.JSONField(default=dict, blank=True,
                                     help_text="Batch durations: seconds (upper bound) -> batches, cumulative.")
    batch_seconds_sum = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "member"], name="consumerheartbeat_member")]
        ordering = ["consumer", "-beat_at"]

    def __str__(self) -> str:
        return f"{self.consumer} {self.member} {self.state}"


class ConsumerOffset(models.Model):
    """The next offset to apply, per consumer group and partition, for the consumers that keep
    their positions in PostgreSQL (ConsumerSpec.offsets_in_db).

    Written in the same transaction as each batch's effects (streams.kafka.offsets), so a
    replay after a crash between the database commit and the Kafka commit is skipped; the
    offsets are still committed to Kafka afterwards, so lag and Kafka's tools see them.
    """

    group = models.CharField(max_length=255)
    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    next_offset = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "topic", "partition"],
                                               name="consumeroffset_position")]

    def __str__(self) -> str:
        return f"{self.group} {self.topic}[{self.partition}] @ {self.next_offset}"
