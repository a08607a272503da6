"""`flask --app wsgi users export FILE` and `users import FILE`: the jobs' code, with a progress bar.

An export imports back as it is. A file the import cannot read (a wrong header) exits 1 with the
reason, as the job fails; rows rejected one by one are listed, and the command still exits 0, as
the job succeeds with its report.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from webapp.extensions import db
from webapp.jobs import users_io
from webapp.observability import quiet_logs

users_cli = AppGroup("users", help="Export and import users.")


def _bar_progress(bar):
    state = {"done": 0}

    def progress(done: int, total: int) -> bool:
        bar.length = total
        bar.update(done - state["done"])
        state["done"] = done
        return True
    return progress


@users_cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default=None,
              help="Default: from the file's extension, else csv.")
@quiet_logs
def export_command(file, fmt):
    """Write every user to FILE as CSV or JSON."""
    fmt = fmt or ("json" if file.lower().endswith(".json") else "csv")
    with open(file, "w", encoding="utf-8", newline="") as out, \
            click.progressbar(length=1, label=f"exporting users to {file}", file=sys.stderr) as bar:
        count = users_io.export_users(db.session, out, fmt, progress=_bar_progress(bar))
    click.echo(f"exported {count} users to {file}")


@users_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--report", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Where to write the per-row report (JSON). Default: FILE.report.json")
@quiet_logs
def import_command(file, report):
    """Create users from CSV FILE: a user export as it is, or rows name,email[,role] (header optional).

    Each created user gets a set-your-password email.
    """
    report = report or f"{file}.report.json"
    try:
        with open(file, encoding="utf-8-sig", newline="") as handle:
            total = users_io.count_rows(handle)
        with open(file, encoding="utf-8-sig", newline="") as handle, open(report, "w", encoding="utf-8") as out, \
                click.progressbar(length=max(total, 1), label=f"importing {file}", file=sys.stderr) as bar:
            counts = users_io.import_users(db.session, handle, out, total=total, progress=_bar_progress(bar))
    except UnicodeDecodeError:  # found while counting, before anything was written
        Path(report).unlink(missing_ok=True)
        raise click.ClickException(f"{file} is not a UTF-8 CSV file; nothing was imported.") from None
    except users_io.WrongHeader as exc:
        Path(report).unlink(missing_ok=True)
        raise click.ClickException(f"{exc} Nothing was imported.") from None
    click.echo(f"created {counts['created']}, rejected {counts['rejected']}; report in {report}")
    if counts["rejected"]:
        with open(report, encoding="utf-8") as handle:
            for row in json.load(handle)["rows"]:
                if row["status"] == "rejected":
                    click.echo(f"  row {row['row']}: {row['errors']}", err=True)
