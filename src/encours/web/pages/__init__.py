"""Server-rendered pages (Jinja2 + HTMX partial updates)."""
