"""Export and import of users in batches: the code behind the jobs and the command line.

Neither holds a transaction open for the whole file. The export walks the users table by
keyset (`id > last`) in short read transactions and writes each batch out before reading
the next, so memory stays flat whatever the row count. The import validates each row with
the sign-up rules and commits each batch on its own.

An export imports back: the import reads the export's header and takes name, email and role
from it (the export's other columns describe the old row and are ignored), and undoes the
export's formula escaping. A file without a header is read as `name,email[,role]`. A header
the import cannot read refuses the whole file (WrongHeader) before anything is written: a
column mix-up would otherwise be one rejection per row, or worse, quietly wrong roles.
"""
from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp import validation
from webapp.accounts import services as accounts
from webapp.accounts.models import SET_PASSWORD
from webapp.errors import Invalid
from webapp.users.models import ROLES, Profile, User

Progress = Callable[[int, int], bool]  # (done, total) -> keep going?
EXPORT_FIELDS = ("id", "name", "email", "role", "is_active", "email_verified", "created_at")
IMPORT_FIELDS = ("name", "email", "role")
IGNORED_FIELDS = tuple(field for field in EXPORT_FIELDS if field not in IMPORT_FIELDS)
HEADERLESS = {"name": 0, "email": 1, "role": 2}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EMAIL_TAKEN = "A user with this email already exists."


class Stopped(Exception):
    """The progress callback asked to stop (the job was cancelled)."""


class WrongHeader(ValueError):
    """The first row is a header the import cannot read; nothing was imported."""


def _pause() -> None:
    delay = current_app.config.get("JOB_BATCH_DELAY") or 0
    if delay:
        time.sleep(delay)


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _batches(session: Session, batch_size: int) -> Iterator[list]:
    columns = [getattr(User, name) for name in EXPORT_FIELDS]
    last = 0
    while True:
        rows = session.execute(select(*columns).where(User.id > last).order_by(User.id).limit(batch_size)).all()
        session.rollback()  # end the read transaction between batches; nothing is held
        if not rows:
            return
        last = rows[-1].id
        yield rows


def export_users(session: Session, out: IO[str], fmt: str, *, progress: Progress | None = None,
                 batch_size: int | None = None) -> int:
    """Write every user to `out` as CSV or JSON; returns the row count. Raises Stopped."""
    batch_size = batch_size or current_app.config["JOB_BATCH_SIZE"]
    total = session.scalar(select(func.count()).select_from(User)) or 0
    session.rollback()
    done = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(EXPORT_FIELDS)
    else:
        out.write("[")
    for rows in _batches(session, batch_size):
        if writer:
            writer.writerows([safe_cell(getattr(row, name)) for name in EXPORT_FIELDS] for row in rows)
        else:
            out.write("".join(("," if done or index else "") + "\n" + json.dumps(
                {name: _json_value(getattr(row, name)) for name in EXPORT_FIELDS}, ensure_ascii=False)
                for index, row in enumerate(rows)))
        done += len(rows)
        _pause()
        if progress and not progress(done, max(total, done)):
            raise Stopped()
    if not writer:
        out.write("\n]\n")
    return done


def unescape_cell(text: str) -> str:
    """Undo `safe_cell`: an exported `'+name` imports as `+name`."""
    return text[1:] if text.startswith("'") and text[1:2] and text[1] in FORMULA_START else text


def _json_value(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def count_rows(lines: Iterable[str]) -> int:
    return sum(1 for line in lines if line.strip())


def read_header(first_row: list[str]) -> tuple[dict[str, int], int] | None:
    """(where name, email and role are, how many columns) from a header; None when the first
    row is data (a header names columns, so no cell of it holds an email's `@`)."""
    cells = [cell.strip().lower() for cell in first_row]
    if any("@" in cell for cell in cells):
        return None
    known = IMPORT_FIELDS + IGNORED_FIELDS
    problems = []
    if missing := [field for field in ("name", "email") if field not in cells]:
        problems.append(f"missing {', '.join(missing)}")
    if unknown := [cell for cell in cells if cell and cell not in known]:  # blank ones: spreadsheets add them
        problems.append(f"unknown {', '.join(unknown)}")
    if twice := sorted({cell for cell in cells if cell in known and cells.count(cell) > 1}):
        problems.append(f"repeated {', '.join(twice)}")
    if problems:
        raise WrongHeader(
            "The first row must be a header naming the columns name and email, and role if wanted "
            f"(a user export's {', '.join(IGNORED_FIELDS)} are ignored), or be a row of data "
            f"without a header, in the order name,email[,role]. Found: {', '.join(cells)[:200]} "
            f"({'; '.join(problems)[:200]}).")
    return {field: cells.index(field) for field in IMPORT_FIELDS if field in cells}, len(cells)


def _parse_row(raw: list[str], columns: dict[str, int], width: int) -> tuple[dict, dict]:
    """The clean fields of one CSV row and the field errors, with the sign-up rules."""
    clean: dict = {}
    cells = [unescape_cell(cell.strip()) for cell in raw]

    def cell(field: str) -> str:
        index = columns.get(field)
        return cells[index] if index is not None and index < len(cells) else ""

    checks = {
        "name": lambda: clean.__setitem__("name", validation.name(cell("name"))),
        "email": lambda: clean.__setitem__("email", validation.email(cell("email"))),
        "role": lambda: clean.__setitem__("role", _role(cell("role") or "user")),
    }
    try:
        validation.collect(checks)
    except Invalid as exc:
        return clean, exc.errors
    if len(raw) > width and any(cell.strip() for cell in raw[width:]):
        expected = "the columns name,email[,role]" if columns is HEADERLESS else f"the header's {width} columns"
        return clean, {"_row": [f"More cells than {expected}."]}
    return clean, {}


def _role(value: str) -> str:
    if value not in ROLES:
        raise Invalid(f"Must be one of: {', '.join(ROLES)}.")
    return value


def import_users(session: Session, lines: Iterable[str], out: IO[str], *, total: int = 0,
                 progress: Progress | None = None, batch_size: int | None = None) -> dict:
    """Create users from CSV: a header naming name, email[, role] (an export's header), or no header
    and `name,email[,role]`; report each row to `out` as JSON. Raises WrongHeader first thing.

    Imported users have no password; each gets a set-your-password email (the reset flow),
    recorded in their batch's transaction and sent after it commits.
    """
    batch_size = batch_size or current_app.config["JOB_BATCH_SIZE"]
    counts = {"created": 0, "rejected": 0}
    out.write('{"rows": [')
    first = True
    seen: set[str] = set()
    batch: list[tuple[int, dict]] = []
    done = 0

    def report(entry: dict) -> None:
        nonlocal first
        out.write(("" if first else ",") + "\n" + json.dumps(entry, ensure_ascii=False))
        first = False
        counts[entry["status"]] += 1

    def flush() -> None:
        nonlocal done
        if not batch:
            return
        emails = [fields["email"] for _, fields in batch]
        taken = set(session.scalars(select(User.email).where(User.email.in_(emails))))
        created = []
        for row_number, fields in batch:
            if fields["email"] in taken:
                report({"row": row_number, "email": fields["email"], "status": "rejected",
                        "errors": {"email": [EMAIL_TAKEN]}})
                continue
            user = User(name=fields["name"], email=fields["email"], role=fields["role"],
                        password_hash=None, profile=Profile())
            session.add(user)
            created.append((row_number, user))
        session.flush()
        for _, user in created:  # each email recorded with its user (the outbox)
            accounts.send_token(accounts.issue_token(session, user, SET_PASSWORD))
        session.commit()
        for row_number, user in created:
            report({"row": row_number, "email": user.email, "status": "created", "id": user.id})
        done += len(batch)
        batch.clear()
        _pause()
        if progress and not progress(done, max(total, done)):
            raise Stopped()

    layout = None
    for row_number, raw in enumerate(csv.reader(lines), start=1):
        if not raw or not any(cell.strip() for cell in raw):
            continue
        if layout is None:
            layout = read_header(raw)
            if layout is not None:
                total = max(total - 1, 0)
                continue
            layout = (HEADERLESS, len(HEADERLESS))
        fields, errors = _parse_row(raw, *layout)
        if not errors and fields["email"] in seen:
            errors = {"email": ["Appears earlier in this file."]}
        if errors:
            at = layout[0]["email"]
            report({"row": row_number, "email": (raw[at].strip() if len(raw) > at else "")[:254],
                    "status": "rejected", "errors": errors})
            done += 1
            continue
        seen.add(fields["email"])
        batch.append((row_number, fields))
        if len(batch) >= batch_size:
            flush()
    flush()
    out.write(f'\n], "created": {counts["created"]}, "rejected": {counts["rejected"]}}}\n')
    return counts
