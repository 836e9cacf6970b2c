"""Persistence: tables, migrations, unit of work and set-based queries (the only SQL)."""
