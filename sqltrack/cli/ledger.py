"""``sqltrack verify``: recompute the ledger's hash chains, take and check digests."""

from __future__ import annotations

import argparse
import json
import sys

from sqltrack.cli import command, emit


@command(
    "verify",
    "Prove the store unchanged: recompute the ledger's hash chains and every record (run "
    "starts and ends, params, metrics, tags, artifacts, datasets, models) and list each "
    "mismatch (table, run, key, what differs); exit 1 when there is one. --digest prints "
    "the store's digest (and records it) for an auditor to keep outside the database; "
    "--against DIGEST proves the history up to that digest unchanged.",
    "sqltrack verify --digest   (later: sqltrack verify --against DIGEST, with the 64 hex "
    "digits it printed)",
)
def _verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", metavar="RUN_ID", default=None, help="verify one run only")
    p.add_argument(
        "--digest",
        action="store_true",
        help="after verifying, record and print the store's digest (needs write access)",
    )
    p.add_argument(
        "--adopt",
        action="store_true",
        help="first give each run and experiment that has no chain (a store upgraded from "
        "before the ledger) a chain of 'adopt' entries for its rows as they are (needs write "
        "access; run it once, after reading what verify lists)",
    )
    p.add_argument(
        "--against",
        metavar="DIGEST",
        default=None,
        help="a digest printed earlier by --digest: prove the history up to it unchanged",
    )


@_verify.runner
def _run_verify(args: argparse.Namespace) -> int:
    from sqltrack.tracking import connect

    with connect(args.uri, read_only=not (args.digest or args.adopt)) as tracker:
        if args.adopt:
            from sqltrack import ledger

            tracker.flush()
            adopted = ledger.adopt(tracker.backend)
            print(f"adopted {adopted} record(s) written before the ledger", file=sys.stderr)
        report = tracker.verify(args.run, against=args.against)
        taken = tracker.ledger_digest() if args.digest and report.ok else None
    if args.format == "json":
        data = {
            "ok": report.ok,
            "uri": report.uri,
            "run_id": report.run_id,
            "against": report.against,
            "chains": report.chains,
            "entries": report.entries,
            "rows": report.rows,
            "adopted": report.adopted,
            "digest": taken.digest if taken else None,  # recorded: usable with --against
            "current_digest": report.digest,
            "mismatches": [
                {"table": m.table, "run_id": m.run_id, "key": m.key, "problem": m.problem}
                for m in report.mismatches
            ],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif args.format == "csv":
        emit(
            ["table", "run_id", "key", "problem"],
            [(m.table, m.run_id, m.key, m.problem) for m in report.mismatches],
            "csv",
        )
    else:
        for m in report.mismatches:  # the problem is the point: never cut it to a column
            where = f"run {m.run_id}" if m.run_id else "store"
            print(f"{m.table}  {where}  {m.key}\n    {m.problem}")
        print(report.summary())
        if taken is not None:
            print(
                f"digest {taken.digest} (taken {taken.taken_at.isoformat()}, "
                f"{taken.chains} chains, {taken.entries} entries): keep it outside the store"
            )
    if args.digest and not report.ok:
        print("sqltrack: no digest taken: the store does not verify", file=sys.stderr)
    return 0 if report.ok else 1
