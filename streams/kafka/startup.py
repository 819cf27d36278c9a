"""What a consumer process does once, before its loop.

The garbage collector, tuned for a batch process. A consumer holds a batch of
tens of thousands of live envelopes at a time and frees them by reference
counting when the batch lands. With Python's default threshold (a collection
every 700 net allocations) each batch's objects were traversed again and
again: a third of each consumer's CPU in the profile that docs/kafka.md
quotes. So what start-up allocated (Django, the app registry, the modules) is
frozen out of the collector, and generation 0 is collected after
`CONSUMER_GC_THRESHOLD` net allocations. Cycles are still collected: they
count towards the threshold until they are.

The producer, made before the first batch. An idempotent producer delivers
nothing for about half a second after it is created (it first obtains its
producer id from the broker); made on the first publish, that wait fell on the
first batch of every consumer (a downstream consumer's first batch took 900 ms,
the next ones 350 ms). Made here, it passes while the consumer joins its group
and fetches.
"""

from __future__ import annotations

import gc

from .producer import get_producer


def tune_collector(threshold: int) -> None:
    """Freeze what exists now and collect generation 0 after `threshold` net
    allocations; a threshold of 0 or less keeps Python's default."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, gen1, gen2)


def prepare_process(gc_threshold: int) -> None:
    """The process-wide producer created now (its handshake runs in librdkafka's
    threads), then the collector tuned, with the producer among what is frozen."""
    get_producer()
    tune_collector(gc_threshold)
