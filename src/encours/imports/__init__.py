"""Importers: each source becomes a CanonicalBatch, which the loader writes in one transaction."""
