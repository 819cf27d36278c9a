"""REST endpoints of the streams app: telemetry, products, the correlation report."""
