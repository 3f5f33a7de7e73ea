-- sqltrack tamper evidence: a hash chain over every record sqltrack writes (one chain per
-- run, one per experiment), the head of each chain, and digests an auditor keeps outside
-- the database. Documented in docs/schema.md ("Tamper evidence").

-- One row per record: the row's table, operation, key and digest, linked to the entry
-- before it in the same chain by hash. Written in the transaction that writes the row.
CREATE TABLE sqltrack.ledger (
    scope        TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    entry_id     BIGINT NOT NULL,
    table_name   TEXT NOT NULL,
    operation    TEXT NOT NULL,
    row_key      TEXT NOT NULL,
    row_digest   TEXT NOT NULL,
    detail       TEXT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (scope, seq)
);

-- The last entry of each chain: appending moves this one row (compare-and-set), so
-- writers of different runs never wait for each other.
CREATE TABLE sqltrack.ledger_heads (
    scope  TEXT PRIMARY KEY,
    seq    BIGINT NOT NULL,
    hash   TEXT NOT NULL
);

-- Digests taken with `sqltrack verify --digest`, and the heads each one covers.
CREATE TABLE sqltrack.ledger_digests (
    digest    TEXT PRIMARY KEY,
    taken_at  TIMESTAMPTZ NOT NULL,
    taken_by  TEXT NOT NULL,
    chains    BIGINT NOT NULL,
    entries   BIGINT NOT NULL
);

CREATE TABLE sqltrack.ledger_digest_heads (
    digest  TEXT NOT NULL,
    scope   TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL,
    PRIMARY KEY (digest, scope)
);

-- Metric points have no natural key: each carries the id of the ledger entry (in its
-- run's chain) that recorded it. NULL: not recorded by the ledger.
ALTER TABLE sqltrack.metrics ADD COLUMN ledger_entry BIGINT;
