"""`encours serve` and `encours users ...`: the web server, users and API tokens."""

from __future__ import annotations

import sys

import typer

from encours.cli.context import console, fail_input, print_json, state
from encours.i18n import N_, _


def register(app: typer.Typer) -> None:
    @app.command("serve", help=N_("Serve the web application (pages, /api/v1, /docs)."))
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help=N_("Address to listen on.")),
        port: int = typer.Option(8000, "--port", help=N_("TCP port.")),
        workers: int = typer.Option(
            1,
            "--workers",
            min=1,
            max=64,
            help=N_(
                "Worker processes (default 1). With more than one, set ENCOURS_SECRET_KEY "
                "so that sessions survive a restart; each worker keeps its own cache."
            ),
        ),
        api_only: bool = typer.Option(
            False,
            "--api-only",
            help=N_(
                "Serve only /api/v1 (no pages): a process for the integrations, e.g. the "
                "order checks, on another port."
            ),
        ),
    ) -> None:
        from encours.web import serve as run

        run(state.db_url, host, port, None, workers=workers, api_only=api_only)

    users_app = typer.Typer(help=N_("Users of the web application and API tokens."),
                            no_args_is_help=True)  # fmt: skip
    token_app = typer.Typer(help=N_("API tokens for integrations."), no_args_is_help=True)
    users_app.add_typer(token_app, name="token")
    app.add_typer(users_app, name="users")

    @users_app.command(
        "add", help=N_("Add a user (the password is read from stdin, never from the command line).")
    )
    def add(
        name: str = typer.Argument(..., help=N_("User name.")),
        role: str = typer.Option(
            ...,
            "--role",
            help=N_("admin, credit_manager, collector, sales, accountant or read_only."),
        ),  # fmt: skip
        password_stdin: bool = typer.Option(
            False, "--password-stdin", help=N_("Read the password from standard input.")
        ),
        owner: str | None = typer.Option(
            None,
            "--owner",
            help=N_(
                "Collector or sales (required): the collector or account owner name of "
                "their customers, as written in the ledger."
            ),
        ),  # fmt: skip
    ) -> None:
        from encours.store.db import unit_of_work
        from encours.web.accounts import AccountError, OwnerRequired, create_user

        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt(_("Password"), hide_input=True, confirmation_prompt=True)
        try:
            with unit_of_work(state.db_url) as conn:
                create_user(conn, name, role, password, actor="cli", owner_name=owner)
        except OwnerRequired as exc:
            fail_input(
                _(
                    "The {role} role needs --owner NAME: the collector or account owner "
                    "name as written in the ledger."
                ).format(role=exc.role)
            )
        except AccountError as exc:
            fail_input(exc.translated(_))
        console.print(_("User {name} added ({role}).").format(name=name, role=role))

    @users_app.command("list", help=N_("List the users."))
    def list_users(as_json: bool = typer.Option(False, "--json", help=N_("JSON output."))) -> None:
        from encours.store.db import unit_of_work
        from encours.web.accounts import list_users as users

        with unit_of_work(state.db_url) as conn:
            rows = users(conn)
        if as_json:
            print_json(rows)
            return
        for row in rows:
            status = "" if row["active"] else " " + _("(disabled)")
            console.print(f"{row['username']}\t{row['role']}\t{row['owner_name'] or ''}{status}")

    @users_app.command("disable", help=N_("Disable a user (their sessions end at once)."))
    def disable(name: str = typer.Argument(..., help=N_("User name."))) -> None:
        from sqlalchemy import select

        from encours.store.db import unit_of_work
        from encours.web.accounts import USERS, update_user

        with unit_of_work(state.db_url) as conn:
            user_id = conn.execute(select(USERS.c.id).where(USERS.c.username == name)).scalar()
            if user_id is None:
                fail_input(_("No user named {name}.").format(name=name))
            update_user(conn, user_id, actor="cli", active=False)
        console.print(_("User {name} disabled.").format(name=name))

    @token_app.command(
        "create", help=N_("Create an API token and print it once (only its hash is kept).")
    )
    def token_create(
        name: str = typer.Argument(..., help=N_("Token name (the integration).")),
        role: str = typer.Option(
            ...,
            "--role",
            help=N_(
                "Role of the token: admin, credit_manager, collector, sales, accountant, read_only."
            ),
        ),
        owner: str | None = typer.Option(
            None, "--owner", help=N_("Sales: the account owner name of their customers.")
        ),
    ) -> None:
        from encours.store.db import unit_of_work
        from encours.web.accounts import AccountError, create_token

        try:
            with unit_of_work(state.db_url) as conn:
                token = create_token(conn, name, role, actor="cli", owner_name=owner)
        except AccountError as exc:
            fail_input(exc.translated(_))
        console.print(_("Token {name} (shown once, copy it now):").format(name=name),
                      highlight=False)  # fmt: skip
        typer.echo(token)

    @token_app.command("revoke", help=N_("Revoke an API token."))
    def token_revoke(
        name: str = typer.Argument(..., help=N_("Token name (the integration).")),
    ) -> None:
        from encours.store.db import unit_of_work
        from encours.web.accounts import AccountError, revoke_token

        try:
            with unit_of_work(state.db_url) as conn:
                revoke_token(conn, name, actor="cli")
        except AccountError as exc:
            fail_input(exc.translated(_))
        console.print(_("Token {name} revoked.").format(name=name))

    @token_app.command("list", help=N_("List the API tokens (never the tokens themselves)."))
    def token_list(as_json: bool = typer.Option(False, "--json", help=N_("JSON output."))) -> None:
        from encours.store.db import unit_of_work
        from encours.web.accounts import list_tokens

        with unit_of_work(state.db_url) as conn:
            rows = list_tokens(conn)
        if as_json:
            print_json(rows)
            return
        for row in rows:
            revoked = " " + _("(revoked)") if row["revoked_at"] else ""
            console.print(f"{row['name']}\t{row['role']}\t{row['prefix']}…{revoked}")
