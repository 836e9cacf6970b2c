"""`encours db ...`: schema migrations."""

from __future__ import annotations

import typer

from encours.cli.context import console, state
from encours.i18n import N_, _


def display_url(url: str) -> str:
    """The database URL as shown to people: the password masked (``***``)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help=N_("Database schema (Alembic migrations)."), no_args_is_help=True)

    @db_app.command(
        "upgrade", help=N_("Apply the migrations up to REVISION (default: the latest).")
    )
    def upgrade(revision: str = typer.Argument("heads", help=N_("Target revision."))) -> None:
        from encours.store.db import resolve_url
        from encours.store.db import upgrade as do_upgrade

        do_upgrade(state.db_url, revision)
        shown = display_url(resolve_url(state.db_url))
        console.print(_("Database is up to date: {url}").format(url=shown))

    @db_app.command("current", help=N_("Print the schema revision of the database."))
    def current() -> None:
        from encours.store.db import current_revision, get_engine

        with get_engine(state.db_url, migrate=False).connect() as conn:
            console.print(current_revision(conn) or "-")

    app.add_typer(db_app, name="db")
