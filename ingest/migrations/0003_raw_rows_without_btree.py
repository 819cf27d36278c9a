"""Raw sensor rows without a B-tree: the primary key constraint goes, a BRIN on id comes.

Measured on a million-row file (docs/ingest.md): the B-tree of the primary key
cost PostgreSQL about 1.3 s of the COPY, more than the rest of the table's
upkeep, and the load went from ~198,000 to ~270,000 rows/s without it. Ids
still come from the identity sequence (unique by construction), and rows are
appended in id order, so a BRIN on id finds any id range in a few block
ranges: newest-first pages read id windows downwards from the sequence's last
value (ingest/selectors.py) instead of an index in order.

The model keeps `id` as its primary key for Django; only the database-level
constraint is gone. `file_id` loses the default of 0002: COPY now sends it in
every row (binary format).
"""

from django.contrib.postgres.indexes import BrinIndex
from django.db import migrations

DROP_PRIMARY_KEY = """
DO $$
DECLARE name text;
BEGIN
  SELECT conname INTO name FROM pg_constraint
   WHERE conrelid = 'ingest_sensorreading'::regclass AND contype = 'p';
  IF name IS NOT NULL THEN
    EXECUTE format('ALTER TABLE ingest_sensorreading DROP CONSTRAINT %I', name);
  END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("ingest", "0002_copy_default_and_inbox_scan")]

    operations = [
        migrations.RunSQL(DROP_PRIMARY_KEY, "ALTER TABLE ingest_sensorreading ADD PRIMARY KEY (id)"),
        migrations.AddIndex(
            model_name="sensorreading",
            index=BrinIndex(fields=["id"], name="sensorreading_id_brin", autosummarize=True),
        ),
        migrations.RunSQL(
            "ALTER TABLE ingest_sensorreading ALTER COLUMN file_id DROP DEFAULT",
            "ALTER TABLE ingest_sensorreading ALTER COLUMN file_id "
            "SET DEFAULT (current_setting('ingest.copy_file_id'))::bigint",
        ),
    ]
