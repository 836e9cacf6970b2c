"""Typer command-line interface: thin commands that parse, call a use case and print."""
