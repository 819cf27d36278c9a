"""Product registration (seed 004): cadastro-produtos -> catalog -> produtos-persistidos.

services (rules, transform, upsert, edits) · consumer (`run_consumer products`) ·
models (the catalog; orders looks products up here) · api · admin.
"""
