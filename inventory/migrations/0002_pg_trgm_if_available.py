"""Trigram search (typo tolerance) when the server offers pg_trgm; skipped quietly otherwise.

The embedded pgserver used without DATABASE_URL has no pg_trgm, so the extension and its index
are created only when available (and allowed); the code checks at run time before using them.
"""

from django.db import migrations

FORWARD = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm is available but this role may not create it; skipping';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX IF NOT EXISTS inventory_product_name_trgm_idx
            ON inventory_product USING gin (name gin_trgm_ops);
    END IF;
END
$$;
"""

BACKWARD = "DROP INDEX IF EXISTS inventory_product_name_trgm_idx;"


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
