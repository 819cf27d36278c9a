"""Sensor readings and user activity (seed 003): raw topics -> processed_data -> tables -> CSV.

services (the standard shape, storing) · consumers (`standardize`,
`processed_sink`) · export (CSV) · demo · models · api · admin.
"""
