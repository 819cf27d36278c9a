"""Demo data, for the commands that make it: the sample files a newcomer runs the
console on (`manage.py make_samples`, samples.py; bench/ingest.py reads its sensor
files too) and the live traffic `make run` feeds the pipelines with
(`manage.py demo_traffic`, traffic.py). Sensor CSV rows are made in one place for
both (sensors.py).

Nothing here is imported by the apps or the operations console: only the management
commands in console/management/commands/ and the benchmarks use it.
"""
