"""The ledger: a hash chain over every record sqltrack writes, so that a row inserted,
changed, deleted or reordered behind sqltrack's back is detected (issue 9, "Tamper
evidence"; modelled on SQL Server's ledger tables: hash-chained history plus digests
kept outside the database).

- **Chains.** Each run has its own chain (``scope`` = the run id), and so does each
  experiment (``experiment:<id>``): the run's start and end, its params, tags, metric
  points, pipeline stages, feature chains, artifacts, datasets and models; the
  experiment's row and tags. An entry in ``sqltrack.ledger`` names the table, the
  operation, the row's key and the digest of the row as written, and links to the
  entry before it by hash. Entries are written in the same transaction as the rows
  they describe (:class:`Book`; :func:`record` for one row), never by triggers.
- **No serialised writers.** Appending moves only the chain's head row
  (``sqltrack.ledger_heads``), so writers of different runs never wait for each other.
- **Metrics** are many: one entry covers every point a delivery wrote for a run, and
  each of those rows carries ``metrics.ledger_entry`` = the entry's id + its position.
- **Verification** (:func:`verify`) walks every chain (links, hashes, no gaps, the
  head at its end, nothing but tags after a run's end), recomputes each row's digest
  from the live tables, and hashes artifact and model bytes and dataset tables again.
- **Digests** (:func:`take_digest`) commit to every chain's head; kept outside the
  store (a ticket, an e-mail) they prove the history up to them unchanged
  (``verify(against=...)``), even against someone who rewrote the ledger itself.

- **Adoption** (:func:`adopt`) binds the rows of a store made before the ledger existed
  into the chains, as ``adopt`` entries that ``verify`` counts.

The encoding is in :mod:`sqltrack.ledger._encoding`; the tables covered, and the hook
for new kinds of records, in :mod:`sqltrack.ledger._tables`.
"""

from __future__ import annotations

from sqltrack.ledger._adopt import adopt
from sqltrack.ledger._book import Book, enabled, record
from sqltrack.ledger._digest import LedgerDigest, take_digest
from sqltrack.ledger._tables import TABLES, TableSpec, register
from sqltrack.ledger._verify import Mismatch, VerifyReport, verify

__all__ = [
    "TABLES",
    "Book",
    "LedgerDigest",
    "Mismatch",
    "TableSpec",
    "VerifyReport",
    "adopt",
    "enabled",
    "record",
    "register",
    "take_digest",
    "verify",
]
