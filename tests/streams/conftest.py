from __future__ import annotations

import pytest

from streams.orders.demo import catalog_seed_demo


@pytest.fixture
def catalog(db):
    """The seed's demo catalog: prod-1 Laptop .. prod-5 Keyboard."""
    catalog_seed_demo(count=5)


def consumed(processes, proc) -> int:
    """Messages a consumer process has handled so far (from its batch log lines)."""
    return sum(
        int(line.split("messages=")[1].split()[0])
        for line in processes.log(proc).splitlines()
        if "consumer_batch" in line
    )
