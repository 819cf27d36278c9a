"""The Kafka broker stops for 10 s under REST load and while `telemetry` consumes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from console.ops.health import consumer_states
from streams.models import MachineMetric
from tests.conftest import wait_until

from .conftest import secs
from .helpers import RestLoad, caught_up, wall

pytestmark = [pytest.mark.chaos, pytest.mark.kafka_partitions(3), pytest.mark.timeout(420)]

PRODUCE_TIMEOUT = 3.0
MARGIN = 2.0  # scheduling slack on a busy 2-core machine
WARM_SECONDS = 12
DOWN_SECONDS = 10
AFTER_SECONDS = 15


def test_kafka_broker_restart_under_rest_load(kafka, processes, services, figures):
    user = get_user_model().objects.create_user(username="svc-chaos")
    user.groups.add(Group.objects.get(name="telemetry-publishers"))  # as create_service_token does
    token = Token.objects.create(user=user)
    consumer = processes.consumer("telemetry", "--batch-time", "200")
    _web, port = processes.web(KAFKA_PRODUCE_TIMEOUT_SECONDS=str(PRODUCE_TIMEOUT))
    load = RestLoad(port, token.key, threads=4, rate=100).start()
    wait_until(lambda: sum(a.status == 202 for a in load.snapshot()) >= 200, timeout=60,
               message="the REST load to be acknowledged")
    time.sleep(WARM_SECONDS)
    assert MachineMetric.objects.exists(), "the consumer stored nothing before the outage"
    try:
        stopping_at = time.monotonic()
        with services.down("kafka") as down_at:
            time.sleep(DOWN_SECONDS)
            starting_at = time.monotonic()
        up_at = time.monotonic()
        time.sleep(AFTER_SECONDS)
    finally:
        answers = load.stop()
    load_ended = time.monotonic()

    # Every answered event reaches PostgreSQL: wait until the group committed everything there is.
    group = f"{kafka.group_prefix}-telemetry"
    wait_until(lambda: caught_up(kafka, group, ["metrics", "workorders"]), timeout=120,
               message="telemetry to commit every offset after the restart")
    assert consumer.poll() is None, "the consumer exited:\n" + processes.log(consumer)[-3000:]

    acknowledged = {a.key: a.event["val"] for a in answers if isinstance(a.status, int) and 200 <= a.status < 300}
    sent = {a.key: a.event["val"] for a in answers}
    stored_rows = list(MachineMetric.objects.values_list("parameter_id", "time", "value", "received_at"))
    stored = {(p, t): v for p, t, v, _ in stored_rows}
    doubled = len(stored_rows) - len(stored)
    missing = set(acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events not stored, e.g. {sorted(missing)[:5]}"
    assert all(stored[k] == v for k, v in acknowledged.items()), "a stored value differs from the one sent"
    assert set(stored) <= set(sent), "rows that no client sent"
    assert doubled == 0

    statuses: dict[int | str, int] = {}
    for a in answers:
        statuses[a.status] = statuses.get(a.status, 0) + 1
    assert set(statuses) <= {202, 503}, f"answers other than 202/503: {statuses}"
    while_down = [a for a in answers if a.started >= down_at and a.ended <= starting_at]
    assert while_down, "no request was answered while the broker was down"
    assert all(a.status == 503 for a in while_down), {a.status for a in while_down}
    unavailable = [a for a in answers if a.status == 503]
    max_503_latency = max(a.latency for a in unavailable)
    assert max_503_latency <= PRODUCE_TIMEOUT + MARGIN, f"a 503 took {max_503_latency:.2f}s"

    # The longest run of consecutive 503s (all threads, in the order the requests started).
    longest, run = 0.0, []
    for a in sorted(answers, key=lambda a: a.started):
        if a.status == 503:
            run.append(a)
            longest = max(longest, max(x.ended for x in run) - run[0].started)
        else:
            run = []
    # Resume: the broker is ready again -> the first row the consumer stores after that.
    after = [received for *_, received in stored_rows if received.timestamp() >= wall(starting_at)]
    first_new = min(after).timestamp() if after else None
    resume = first_new - wall(up_at) if first_new is not None else None
    assert after, "no row was stored after the broker came back"
    states = consumer_states()
    assert states["telemetry"]["status"] == "running", states["telemetry"]
    waiting_lines = processes.log(consumer).count("consumer_waiting")

    figures.record(
        "kafka",
        sent=len(answers), acknowledged=len(acknowledged), answered_503=len(unavailable),
        stored=len(stored), stored_of_503=len(set(stored) - set(acknowledged)), missing=len(missing),
        doubled=doubled, longest_503=secs(longest), max_503_latency=secs(max_503_latency),
        stop=secs(down_at - stopping_at), down=secs(starting_at - down_at), start=secs(up_at - starting_at),
        resume=secs(resume), consumer_waiting_logs=waiting_lines,
        catch_up=secs(time.monotonic() - load_ended), consumer_alive=consumer.poll() is None,
        at=datetime.now(UTC).strftime("%H:%M:%S"),
    )


def test_operator_pages_say_the_broker_is_away(kafka, services):
    """With the broker stopped, the Kafka pages of the admin answer within their
    timeouts and say why they show nothing; none is a 500."""
    from django.test import Client

    operator = get_user_model().objects.create_superuser("chaos-operator", password="pw-for-tests-1")
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    topic = kafka.name("orders")
    with services.down("kafka"):
        started = time.monotonic()
        dashboard = client.get("/admin/ops/")
        topics = client.get("/admin/ops/topics/")
        browser = client.get(f"/admin/ops/topics/{topic}/")
        took = time.monotonic() - started
    assert dashboard.status_code == 200 and "Kafka is unreachable" in dashboard.content.decode()
    assert topics.status_code == 200 and "Kafka could not list its topics" in topics.content.decode()
    assert browser.status_code == 200 and "Kafka cannot answer for" in browser.content.decode()
    assert took < 60, f"the pages took {took:.0f} s"
