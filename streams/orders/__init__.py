"""Real-time order analytics (seed 002): orders -> processed-orders -> 1-minute windows -> product-metrics.

services (rules, enrichment, windows) · consumers (`orders`, `order_windows`) ·
demo (catalog and orders) · models · api · admin. Looks products up in
streams.products (the one declared lookup between pipelines besides the report's).
"""
