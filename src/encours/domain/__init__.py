"""Pure domain rules (payment terms, legal identifiers, lettrage): no IO, no database."""
