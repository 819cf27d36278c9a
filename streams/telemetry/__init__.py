"""Telemetry (seed 000): machine metrics and work orders, published over REST and Kafka, stored idempotently.

rules (what an event must be) · publish (the one POST path) · api (DRF views) ·
asgi (the hot path) · consumer (`run_consumer telemetry`) · models · admin.
"""
