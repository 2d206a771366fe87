"""Where a secret could hide in text that left the program: every encoding it can take.

Written apart from the redactor, from the forms a secret really takes on the way out, so the
tests that use it check the redactor rather than repeat it.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus


def encodings(
    secret: str, *, users: tuple[str, ...] = ("svc_crosswalk", "a", "ab")
) -> dict[str, str]:
    """The forms ``secret`` takes: raw, stripped, escaped, URL-quoted, base64 alone and inside
    a Basic header for each of ``users`` (three users, three byte alignments)."""
    forms = {
        "raw": secret,
        "stripped": secret.strip(),
        "repr": repr(secret)[1:-1],
        "bytes repr": repr(secret.encode())[2:-1],
        "json": json.dumps(secret)[1:-1],
        "url-quoted": quote(secret, safe=""),
        "url-quoted plus": quote_plus(secret),
        "base64": base64.b64encode(secret.encode()).decode().rstrip("="),
    }
    for user in users:
        forms[f"basic {user}"] = base64.b64encode(f"{user}:{secret}".encode()).decode()
        # The part of the encoding that is the secret's alone, wherever the user ends.
        inner = base64.b64encode(f"{user}:{secret}".encode()).decode().rstrip("=")
        start = (len(user) + 1) * 4 // 3 + 2
        forms[f"basic {user} (secret's part)"] = inner[start : len(inner) - 2]
    return forms


def leaks(text: str | bytes, secret: str) -> list[str]:
    """The names of the encodings of ``secret`` found in ``text`` (empty: none leaked)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [name for name, form in encodings(secret).items() if len(form) >= 6 and form in text]


def store_text(url: str) -> str:
    """Everything a store holds, as text: a SQLite file's bytes (and its WAL), or every row of
    every table of a PostgreSQL database."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        from pathlib import Path

        path = Path(parsed.database or "")
        data = b"".join(
            p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
        return data.decode("utf-8", "replace")
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(
                repr(tuple(row)) + "\n" + "\n".join(str(v) for v in row)
                for table in meta.sorted_tables
                for row in conn.execute(sa.select(table))
            )
    finally:
        engine.dispose()
