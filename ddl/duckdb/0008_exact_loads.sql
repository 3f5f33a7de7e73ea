-- sqltrack exact loads: which fingerprint algorithm each dataset was recorded with.
-- Documented in docs/schema.md (sqltrack.datasets). Datasets logged before this migration
-- keep version 1 (order-independent, blind to the sign of zero) and are verified with it;
-- new ones are version 2 (the sign of every float and, for kept-order datasets, the row
-- sequence are part of the hash).
ALTER TABLE sqltrack.datasets ADD COLUMN fingerprint_version INTEGER DEFAULT 1;
