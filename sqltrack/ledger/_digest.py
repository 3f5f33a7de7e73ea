"""Digests: one hash over every chain's head, recorded with the heads it covers, for an
auditor to keep outside the database (SQL Server's "database digests")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqltrack.backends import Backend
from sqltrack.errors import IntegrityError
from sqltrack.ledger import _encoding as enc

__all__ = ["LedgerDigest", "take_digest"]


@dataclass(frozen=True)
class LedgerDigest:
    """A digest of the store (:meth:`sqltrack.Tracker.ledger_digest`): keep ``digest``
    outside the database; ``sqltrack verify --against DIGEST`` proves the history up to
    it unchanged."""

    digest: str
    taken_at: datetime
    chains: int
    entries: int


def take_digest(backend: Backend, user: str, *, store: bool = True) -> LedgerDigest:
    """The digest over every chain's head; with ``store``, also record it (and the heads
    it covers) in ``sqltrack.ledger_digests`` so that ``verify --against`` can use it."""
    with backend.transaction(read_only=not store) as s:
        rows = s.query(
            "SELECT h.scope, h.seq, h.hash, l.hash FROM sqltrack.ledger_heads h "
            "LEFT JOIN sqltrack.ledger l ON l.scope = h.scope AND l.seq = h.seq ORDER BY h.scope"
        )
        broken = [r[0] for r in rows if r[3] != r[2]]
        if broken:
            raise IntegrityError(
                f"the head of {len(broken)} chain(s) (first: {broken[0]}) does not match its "
                "ledger entry; run `sqltrack verify` to see what was changed before taking a digest"
            )
        heads = [(str(r[0]), int(r[1]), str(r[2])) for r in rows]
        digest = enc.digest_of_heads(heads)
        taken_at = datetime.now(timezone.utc)
        if store:
            inserted = s.execute(
                "INSERT INTO sqltrack.ledger_digests (digest, taken_at, taken_by, chains, "
                "entries) VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                (digest, taken_at, user, len(heads), sum(h[1] for h in heads)),
            )
            if inserted == 1:
                s.insert_rows(
                    "sqltrack.ledger_digest_heads",
                    ("digest", "scope", "seq", "hash"),
                    [(digest, *h) for h in heads],
                )
            else:
                taken_at = s.query(
                    "SELECT taken_at FROM sqltrack.ledger_digests WHERE digest = ?", (digest,)
                )[0][0]
    return LedgerDigest(digest, taken_at, len(heads), sum(h[1] for h in heads))
