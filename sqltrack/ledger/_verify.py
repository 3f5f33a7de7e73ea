"""Verification: walk every chain, recompute every row's digest from the live tables,
and check what the rows point at (artifact and model bytes, dataset tables).

Everything is read in one read-only transaction (on PostgreSQL at REPEATABLE READ), so
writers that commit meanwhile are either wholly seen or not at all. A digest
(:mod:`sqltrack.ledger._digest`) commits to every chain's head; ``verify(against=digest)``
then also proves that each of those chains still holds, at that position, the entry it
held.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from sqltrack.backends import Backend, Session
from sqltrack.errors import NotFoundError
from sqltrack.ledger import _encoding as enc
from sqltrack.ledger._tables import TABLES, TableSpec
from sqltrack.sqltext import Fragment, compose, ident

__all__ = ["Mismatch", "VerifyReport", "verify"]

_BEHIND = "behind sqltrack's back"
ENDED_ADOPT = "adopt-ended"  # the row of a run that had ended when it was adopted


@dataclass(frozen=True)
class Mismatch:
    """One thing the store holds that its ledger does not vouch for."""

    table: str  # e.g. "params", "metrics", "ledger"
    run_id: str | None  # the run, None for experiment chains and store-wide findings
    key: str  # the row within the run: a param or metric key, an entry, ...
    problem: str  # what differs, and what it means

    def __str__(self) -> str:
        where = f"run {self.run_id}" if self.run_id else "store"
        return f"{self.table} [{where}] {self.key}: {self.problem}"


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`sqltrack.Tracker.verify` found."""

    uri: str
    run_id: str | None  # the run verified, None for the whole store
    against: str | None  # the digest the history was checked against
    chains: int
    entries: int
    rows: int  # live rows recomputed
    mismatches: tuple[Mismatch, ...]
    digest: str | None  # the store's digest now (None when one run was verified)
    adopted: int = 0  # entries that adopted rows written before the ledger existed

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        what = f"run {self.run_id}" if self.run_id else self.uri
        against = f" against digest {self.against}" if self.against else ""
        verdict = "OK" if self.ok else f"{len(self.mismatches)} MISMATCH(ES)"
        adopted = f" ({self.adopted} adopted from before the ledger)" if self.adopted else ""
        return (
            f"{what}{against}: {self.chains} chain(s), {self.entries} ledger entries"
            f"{adopted}, {self.rows} rows recomputed: {verdict}"
        )


class _Stored(NamedTuple):
    scope: str
    seq: int
    entry_id: int
    table: str
    operation: str
    key: str
    digest: str
    detail: str
    recorded_at: datetime
    prev_hash: str
    hash: str


def _snapshot(backend: Backend, s: Session) -> None:
    """One snapshot for the whole verification where other processes write meanwhile
    (DuckDB's transactions already are one, and it admits one writing process)."""
    if backend.capabilities.concurrent_writers:
        s.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _show_key(key: str) -> str:
    try:
        parts = json.loads(key)
    except ValueError:
        return key
    return "/".join(str(p) for p in parts) if isinstance(parts, list) else key


def _show_value(encoded: str) -> str:
    value = json.loads(encoded)
    if isinstance(value, list) and len(value) == 2 and value[0] == "t":
        text = (enc.EPOCH + timedelta(microseconds=value[1])).isoformat()
    elif isinstance(value, list) and len(value) == 2 and value[0] == "d":
        text = repr(float.fromhex(value[1]))
    elif value is None:
        text = "NULL"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _when(e: _Stored) -> str:
    at = e.recorded_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{e.operation}, entry {e.seq}, {at}"


class _Verifier:
    def __init__(self, s: Session, backend: Backend, run_id: str | None) -> None:
        self.s = s
        self.backend = backend
        self.run_id = run_id
        self.found: list[Mismatch] = []
        self.latest: dict[tuple[str, str, str], _Stored] = {}
        self.metric_entries: dict[tuple[str, int], _Stored] = {}
        self.by_seq: dict[tuple[str, int], str] = {}
        self.scopes: set[str] = set()
        self.heads: list[tuple[str, int, str]] = []
        self.entries = 0
        self.adopted = 0
        self.rows = 0

    def miss(self, table: str, scope: str | None, key: str, problem: str) -> None:
        run = scope if scope and not scope.startswith("experiment:") else None
        if scope and run is None:
            key = f"experiment {scope.split(':', 1)[1]}" + (f": {key}" if key else "")
        self.found.append(Mismatch(table, run, key, problem))

    def _where_run(self, column: str = "run_id") -> tuple[Fragment, tuple[Any, ...]]:
        if self.run_id is None:
            return Fragment(""), ()
        return Fragment(f" WHERE {ident(column)} = ?"), (self.run_id,)

    # -- chains ---------------------------------------------------------------------
    def chains(self) -> None:
        where, params = self._where_run("scope")
        entries = [
            _Stored(r[0], int(r[1]), int(r[2]), *r[3:])
            for r in self.s.query(
                compose(
                    "SELECT scope, seq, entry_id, table_name, operation, row_key, row_digest, "
                    "detail, recorded_at, prev_hash, hash FROM sqltrack.ledger{where} "
                    "ORDER BY scope, seq",
                    where=where,
                ),
                params,
            )
        ]
        heads = {
            r[0]: (int(r[1]), str(r[2]))
            for r in self.s.query(
                compose("SELECT scope, seq, hash FROM sqltrack.ledger_heads{where}", where=where),
                params,
            )
        }
        self.heads = sorted((scope, seq, h) for scope, (seq, h) in heads.items())
        for scope, group in itertools.groupby(entries, key=lambda e: e.scope):
            self.scopes.add(scope)
            last = self._walk(scope, list(group))
            head = heads.pop(scope, None)
            if head is None:
                self.miss("ledger_heads", scope, "", "the chain has no head row (deleted)")
            elif head != last:
                self.miss(
                    "ledger_heads",
                    scope,
                    "",
                    f"the head says entry {head[0]} ({head[1][:12]}) but the chain ends at "
                    f"entry {last[0]} ({last[1][:12]}): entries were removed from or added "
                    f"to its end {_BEHIND}",
                )
        for scope in sorted(heads):
            self.scopes.add(scope)
            self.miss(
                "ledger",
                scope,
                "",
                f"the chain's entries are gone (its head remains): deleted {_BEHIND}",
            )

    def _walk(self, scope: str, chain: list[_Stored]) -> tuple[int, str]:
        prev, expect = enc.genesis(scope), 1
        run_chain = not scope.startswith("experiment:")
        ended: _Stored | None = None
        for e in chain:
            self.entries += 1
            self.adopted += e.operation.startswith("adopt")
            self.by_seq[(scope, e.seq)] = e.hash
            label = f"entry {e.seq} ({e.table} {_show_key(e.key)})"
            if e.seq != expect:
                gap = f"entry {expect}" if e.seq == expect + 1 else f"entries {expect}-{e.seq - 1}"
                self.miss("ledger", scope, gap, f"missing from the chain: deleted {_BEHIND}")
            elif e.prev_hash != prev:
                self.miss(
                    "ledger",
                    scope,
                    label,
                    f"does not link to entry {e.seq - 1}: the chain was rewritten {_BEHIND}",
                )
            recomputed = enc.entry_hash(e.prev_hash, scope, e.seq, e.entry_id, e.table,
                                        e.operation, e.key, e.digest, e.detail,
                                        enc.micros(e.recorded_at))  # fmt: skip
            if recomputed != e.hash:
                self.miss("ledger", scope, label, "altered: its hash does not match its content")
            prev, expect = e.hash, e.seq + 1
            if run_chain:
                ended = self._run_rules(scope, e, ended, first=e is chain[0])
            if e.table == "metrics":
                self.metric_entries[(scope, e.entry_id)] = e
            else:
                self.latest[(e.table, scope, e.key)] = e
        return expect - 1, prev

    def _run_rules(
        self, scope: str, e: _Stored, ended: _Stored | None, first: bool
    ) -> _Stored | None:
        """A run's chain starts with its start; after its end only tags may follow."""
        if first and not (e.table == "runs" and e.operation in ("start", "adopt", ENDED_ADOPT)):
            self.miss(
                "ledger", scope, f"entry {e.seq}", "the run's chain does not begin with its start"
            )
        adopting = (
            ended is not None
            and ended.operation == ENDED_ADOPT
            and (e.operation == "adopt" and e.recorded_at == ended.recorded_at)
        )  # the rows adopted with an ended run, in the same transaction
        if ended is not None and e.table != "tags" and not adopting:
            what = "ended again" if e.operation == "end" else f"{e.table} recorded"
            self.miss(
                e.table,
                scope,
                _show_key(e.key) if e.table != "metrics" else f"entry {e.seq}",
                f"{what} after the run ended ({_when(ended)}): the run was reopened",
            )
        if e.table == "runs" and e.operation in ("end", ENDED_ADOPT) and ended is None:
            return e
        return ended

    # -- rows ------------------------------------------------------------------------
    def tables(self) -> None:
        for table_spec in TABLES.values():
            if self.run_id is not None and not table_spec.run_scoped:
                continue
            self._table(table_spec)
        for (table, scope, key), e in sorted(self.latest.items()):
            if table not in TABLES:
                self.miss(
                    "ledger",
                    scope,
                    f"entry {e.seq}",
                    f"names table {table!r}, which the ledger does not cover",
                )
            elif e.operation != "delete":
                self.miss(
                    table,
                    scope,
                    _show_key(key),
                    f"deleted {_BEHIND}: the ledger recorded it ({_when(e)}) but the row is gone",
                )

    def _table(self, table_spec: TableSpec) -> None:
        params: tuple[Any, ...] = ()
        if self.run_id is not None:
            params = (self.run_id,)
        rows = self.s.query(table_spec.select(by_scope=self.run_id is not None), params)
        key_at = table_spec.index(table_spec.key)
        scope_at = table_spec.columns.index(table_spec.scope_column)
        for row in rows:
            self.rows += 1
            scope = table_spec.scope_of(row[scope_at])
            key = enc.row_key(row[i] for i in key_at)
            encoded = {c: enc.encode_value(v) for c, v in zip(table_spec.columns, row, strict=True)}
            e = self.latest.pop((table_spec.table, scope, key), None)
            if e is None or e.operation == "delete":
                self.miss(
                    table_spec.table, scope, _show_key(key), f"not in the ledger: written {_BEHIND}"
                )
                continue
            self._compare(table_spec, scope, key, e, encoded)

    def _compare(
        self, table_spec: TableSpec, scope: str, key: str, e: _Stored, encoded: dict[str, str]
    ) -> None:
        columns = json.loads(e.detail).get("columns", [])
        unknown = [n for n, _ in columns if n not in encoded]
        if unknown:
            self.miss(
                table_spec.table,
                scope,
                _show_key(key),
                f"its ledger entry names columns the table lacks: {', '.join(unknown)}",
            )
            return
        if enc.row_digest(table_spec.table, [(n, encoded[n]) for n, _ in columns]) == e.digest:
            return
        changed = [n for n, h in columns if enc.short(encoded[n]) != h]
        found = ", ".join(f"{n}={_show_value(encoded[n])}" for n in changed)
        self.miss(
            table_spec.table,
            scope,
            _show_key(key),
            f"changed {_BEHIND}: {_columns(changed) or 'the row differs'} from the "
            f"ledger's record ({_when(e)})" + (f"; found {found}" if found else ""),
        )

    # -- metrics ----------------------------------------------------------------------
    def metrics(self) -> None:
        where, params = self._where_run()
        by_run: dict[str, list[tuple[int | None, str, float, int, int]]] = {}
        for run, point, key, value, step, ts in self.s.query(
            compose(
                'SELECT run_id, ledger_entry, key, value, step, "timestamp" '
                "FROM sqltrack.metrics{where}",
                where=where,
            ),
            params,
        ):
            by_run.setdefault(run, []).append(
                (None if point is None else int(point), key, float(value), int(step),
                 enc.micros(ts))
            )  # fmt: skip
        entries: dict[str, list[_Stored]] = {}
        for (run, _), e in self.metric_entries.items():
            entries.setdefault(run, []).append(e)
        for run in sorted(set(by_run) | set(entries)):
            chain = sorted(entries.get(run, []), key=lambda e: e.entry_id)
            self._run_metrics(run, by_run.get(run, []), chain)

    def _run_metrics(
        self, run: str, rows: list[tuple[int | None, str, float, int, int]], chain: list[_Stored]
    ) -> None:
        """Give each point to the entry whose range of ``ledger_entry`` holds it (entry_id
        to entry_id + its point count), then recompute each entry's digest in point order."""
        self.rows += len(rows)
        starts = [e.entry_id for e in chain]
        sizes = [int(json.loads(e.detail).get("rows", 0)) for e in chain]
        owned: list[list[tuple[int, str, float, int, int]]] = [[] for _ in chain]
        stray: Counter[str] = Counter()
        unnumbered: Counter[str] = Counter()
        for point, key, value, step, stamp in rows:
            if point is None:
                unnumbered[key] += 1
                continue
            i = bisect.bisect_right(starts, point) - 1
            if i < 0 or point >= starts[i] + sizes[i]:
                stray[key] += 1
                continue
            owned[i].append((point, key, value, step, stamp))
        for key, n in sorted(unnumbered.items()):
            self.miss("metrics", run, key, f"{n} point(s) not in the ledger: written {_BEHIND}")
        for key, n in sorted(stray.items()):
            self.miss(
                "metrics",
                run,
                key,
                f"{n} point(s) carry a ledger_entry no entry of the run's chain covers: "
                f"written {_BEHIND}",
            )
        for e, points in zip(chain, owned, strict=True):
            if not points:
                recorded = json.loads(e.detail)
                self.miss(
                    "metrics",
                    run,
                    _entry_keys(recorded),
                    f"deleted {_BEHIND}: the ledger recorded {recorded.get('rows')} point(s) "
                    f"({_when(e)}); none is left",
                )
                continue
            points.sort(key=lambda p: p[0])  # in ledger_entry order: reordered points show
            _, keys, values, steps, stamps = (list(c) for c in zip(*points, strict=True))
            version = 1 if json.loads(e.detail).get("format") == "metrics-v1" else 2
            digest, detail = enc.metrics_digest(keys, values, steps, stamps, version)
            if digest != e.digest:
                self._metrics_changed(run, e, detail)

    def _metrics_changed(self, run: str, e: _Stored, found: dict[str, Any]) -> None:
        recorded = json.loads(e.detail)
        keys = _entry_keys(recorded)
        if "keys" in recorded and "keys" in found:
            mine, theirs = recorded["keys"], found["keys"]
            differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            if differ:
                keys = ", ".join(differ)
        if recorded.get("rows") != found["rows"]:
            problem = (
                f"{recorded.get('rows')} point(s) recorded ({_when(e)}), {found['rows']} found: "
                f"points were added or deleted {_BEHIND}"
            )
        else:
            theirs = dict(found["columns"])
            changed = [n for n, h in recorded.get("columns", []) if theirs.get(n) != h]
            problem = (
                f"{found['rows']} point(s): {_columns(changed) or 'they differ'} from the "
                f"ledger's record ({_when(e)}): changed or reordered {_BEHIND}"
            )
        self.miss("metrics", run, keys, problem)

    # -- what rows point at -------------------------------------------------------------
    def blobs(self) -> None:
        for table, chunks, owner in (
            ("artifacts", "artifact_chunks", "artifact_id"),
            ("models", "model_chunks", "model_id"),
        ):
            self._blobs(table, chunks, owner)

    def _blobs(self, table: str, chunks: str, owner: str) -> None:
        where, params = self._where_run()
        t, c, o = ident("sqltrack", table), ident("sqltrack", chunks), ident(owner)
        owners = self.s.query(
            compose(
                "SELECT {o}, run_id, name, sha256, size_bytes, chunk_count FROM {t}{where}",
                o=o, t=t, where=where,
            ),
            params,
        )  # fmt: skip
        inside = Fragment("")
        if self.run_id is not None:
            inside = Fragment(
                compose(" WHERE {o} IN (SELECT {o} FROM {t} WHERE run_id = ?)", o=o, t=t)
            )
        stats = {
            int(r[0]): (int(r[1]), r[2], r[3], int(r[4] or 0))
            for r in self.s.query(
                compose(
                    "SELECT {o}, count(*), min(chunk_index), max(chunk_index), "
                    "sum(octet_length(data)) FROM {c}{inside} GROUP BY {o}",
                    o=o, c=c, inside=inside,
                ),
                params,
            )
        }  # fmt: skip
        read = compose("SELECT data FROM {c} WHERE {o} = ? AND chunk_index = ?", c=c, o=o)
        for oid, run, name, sha256, size, count in owners:
            n, lo, hi, total = stats.pop(int(oid), (0, None, None, 0))
            if (n, total) != (int(count), int(size)) or (n and (lo, hi) != (0, n - 1)):
                self.miss(
                    chunks,
                    run,
                    name,
                    f"{n} chunk(s) of {total} bytes found; the {table} row records {count} of "
                    f"{size}: chunks were added or removed {_BEHIND}",
                )
                continue
            digest = hashlib.sha256()
            for index in range(n):
                digest.update(bytes(self.s.query(read, (oid, index))[0][0]))
            if digest.hexdigest() != sha256:
                self.miss(
                    chunks,
                    run,
                    name,
                    f"the stored bytes hash to {digest.hexdigest()[:16]}, not the recorded "
                    f"sha256 {sha256[:16]}: changed {_BEHIND}",
                )
        for oid in sorted(stats):
            self.miss(
                chunks, None, f"{owner} {oid}", f"chunks of no {table} row: written {_BEHIND}"
            )

    def data_tables(self) -> None:
        from sqltrack import datasets

        present = {
            r[0]
            for r in self.s.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                "AND table_catalog = current_database()",
                (datasets.DATA_SCHEMA,),
            )
        }
        where, params = self._where_run()
        engine = datasets.engine(self.backend)
        named = set()
        for run, name, table_name, schema, fingerprint, ordered, version in self.s.query(
            compose(
                "SELECT run_id, name, table_name, CAST(spark_schema AS TEXT), fingerprint, "
                "ordered, fingerprint_version FROM sqltrack.datasets{where}",
                where=where,
            ),
            params,
        ):
            table = str(table_name).split(".", 1)[-1]
            named.add(table)
            if table not in present:
                self.miss(
                    "datasets", run, name, f"its data table {table_name} is gone: dropped {_BEHIND}"
                )
                continue
            actual, _ = engine.fingerprint(
                self.s,
                table,
                datasets.user_columns(schema),
                ordered=bool(ordered),
                version=int(version),
            )
            if actual != fingerprint:
                self.miss(
                    table_name,
                    run,
                    name,
                    f"the rows no longer match the dataset's fingerprint (recorded {fingerprint}, "
                    f"found {actual}): changed {_BEHIND}",
                )
        if self.run_id is None:
            for table in sorted(present - named):
                if not table.startswith(datasets.STAGING_PREFIX):
                    self.miss(
                        f"{datasets.DATA_SCHEMA}.{table}",
                        None,
                        "",
                        f"a data table no dataset names: written {_BEHIND}",
                    )

    # -- against a digest -------------------------------------------------------------
    def against(self, digest: str) -> None:
        if not self.s.query("SELECT 1 FROM sqltrack.ledger_digests WHERE digest = ?", (digest,)):
            self.miss(
                "ledger_digests",
                None,
                digest,
                "this store holds no such digest: it was taken from another store, or its "
                f"record was deleted {_BEHIND}",
            )
            return
        heads = [
            (str(r[0]), int(r[1]), str(r[2]))
            for r in self.s.query(
                "SELECT scope, seq, hash FROM sqltrack.ledger_digest_heads WHERE digest = ?",
                (digest,),
            )
        ]
        if enc.digest_of_heads(heads) != digest:
            self.miss(
                "ledger_digest_heads",
                None,
                digest,
                f"the heads recorded for this digest no longer hash to it: altered {_BEHIND}",
            )
            return
        for scope, seq, head in sorted(heads):
            if self.run_id is not None and scope != self.run_id:
                continue
            now = self.by_seq.get((scope, seq))
            if scope not in self.scopes:
                self.miss(
                    "ledger",
                    scope,
                    "",
                    f"the chain held {seq} entries at the digest and is gone now: the "
                    f"{'run' if ':' not in scope else 'experiment'} and its ledger were "
                    f"deleted {_BEHIND}",
                )
            elif now is None:
                self.miss(
                    "ledger",
                    scope,
                    f"entry {seq}",
                    f"the chain's entry at the digest is gone: deleted {_BEHIND}",
                )
            elif now != head:
                self.miss(
                    "ledger",
                    scope,
                    f"entries 1-{seq}",
                    f"the history up to the digest was rewritten {_BEHIND} (entry {seq} hashes "
                    f"to {now[:12]}, the digest recorded {head[:12]})",
                )


def _columns(names: list[str]) -> str:
    if not names:
        return ""
    return f"{names[0]} differs" if len(names) == 1 else f"{', '.join(names)} differ"


def _entry_keys(detail: dict[str, Any]) -> str:
    if "keys" in detail:
        return ", ".join(detail["keys"])
    return (
        f"{detail.get('distinct_keys')} keys {detail.get('first_key')} ... {detail.get('last_key')}"
    )


def verify(backend: Backend, run_id: str | None = None, against: str | None = None) -> VerifyReport:
    """Recompute the chains and every row (of one run, or of the store)."""
    with backend.transaction(read_only=True) as s:
        _snapshot(backend, s)
        v = _Verifier(s, backend, run_id)
        v.chains()
        if run_id is not None and run_id not in v.scopes:
            if not s.query("SELECT 1 FROM sqltrack.runs WHERE run_id = ?", (run_id,)):
                raise NotFoundError(f"run {run_id} does not exist in {backend.uri}")
        v.tables()
        v.metrics()
        v.blobs()
        v.data_tables()
        if against is not None:
            v.against(against.strip())
    digest = None if run_id is not None else enc.digest_of_heads(v.heads)
    return VerifyReport(
        uri=backend.uri,
        run_id=run_id,
        against=against,
        chains=len(v.scopes),
        entries=v.entries,
        rows=v.rows,
        mismatches=tuple(v.found),
        digest=digest,
        adopted=v.adopted,
    )
