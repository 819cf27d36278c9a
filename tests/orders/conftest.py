from __future__ import annotations

import pytest

from streams.orders import catalog_seed_demo


@pytest.fixture
def catalog(db):
    """The seed's demo catalog: prod-1 Laptop .. prod-5 Keyboard."""
    catalog_seed_demo(count=5)
