"""The correlation report (seed 000): machine parameters ranked by correlation with production.

method (pure numpy) · inputs (binary COPY into columns) · services (request,
build, schedule) · tasks (Celery) · export (CSV) · loader (factory data) ·
models · api · admin. Reads the telemetry pipeline's tables (a declared lookup).
"""
