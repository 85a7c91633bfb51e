#!/usr/bin/env python3
"""
What `Store.truncateWal` (a passive checkpoint, then `wal_checkpoint(TRUNCATE)` at busy timeout 0) costs another
writer of the file: `python3 src/probeWalTruncate.py COPY.sqlite --wal-gb 2`, on a copy of a sync's SQLite file (it
writes a scratch table of its own, `probe_fill`, to grow the WAL).

A second connection writes a one-row `BEGIN IMMEDIATE` transaction every 0.2 s throughout (busy timeout 300 s, its
own checkpoints off), as in probeSqliteWriter.py. The first grows the WAL to about `--wal-gb` with its automatic
checkpoints off (as a deletion pass does), commits, checkpoints passively, then truncates with busy timeout 0, timing
each; then the same, `--small` times, after a commit of a few pages (what every complete run pays). Prints JSON.
"""
import argparse
import json
import os
import sqlite3
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("file")
parser.add_argument("--wal-gb", type=float, default=1.0)
parser.add_argument("--small", type=int, default=20)
args = parser.parse_args()

stop = threading.Event()
waits = []


def wal_size():
    try:
        return os.path.getsize(args.file + "-wal")
    except FileNotFoundError:
        return 0


def write_loop():
    db = sqlite3.connect(args.file, timeout=300, isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute("CREATE TABLE IF NOT EXISTS probe_writes (at REAL NOT NULL)")
    while not stop.is_set():
        started = time.time()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO probe_writes (at) VALUES (?)", (started,))
        db.execute("COMMIT")
        waits.append((started, time.time() - started))
        stop.wait(0.2)
    db.close()


def truncate(db):
    """Store.truncateWal's statements, timed."""
    t0 = time.time()
    busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    t1 = time.time()
    result = {"passive_s": t1 - t0, "frames": frames, "copied": copied, "wal_before": wal_size()}
    if busy != 0 or frames <= 0 or frames != copied:
        result["skipped"] = True
        return result
    db.execute("PRAGMA busy_timeout = 0")
    t2 = time.time()
    try:
        result["truncate"] = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError as error:
        result["truncate"] = str(error)
    t3 = time.time()
    db.execute("PRAGMA busy_timeout = 5000")
    result.update({"truncate_s": t3 - t2, "wal_after": wal_size(), "window": (t2, t3)})
    return result


db = sqlite3.connect(args.file, timeout=5, isolation_level=None)
db.execute("PRAGMA journal_mode = wal")
db.execute("PRAGMA wal_autocheckpoint = 0")
writer = threading.Thread(target=write_loop)
writer.start()

# Pages of a scratch table of its own, 50,000 rows of 3,900 random bytes (~200 MB) a transaction, until the WAL is as
# large as asked.
db.execute("CREATE TABLE IF NOT EXISTS probe_fill (bytes BLOB NOT NULL)")
grown_from = time.time()
while wal_size() < args.wal_gb * 1e9:
    db.execute("BEGIN IMMEDIATE")
    db.execute("""WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 50000)
        INSERT INTO probe_fill (bytes) SELECT randomblob(3900) FROM n""")
    db.execute("COMMIT")
large = truncate(db)
large["grown_s"] = time.time() - grown_from
start, end = large.pop("window", (0, 0))
# The second writer's waits from 3 s before the truncate to 3 s after, by when they began (s from the truncate's start).
time.sleep(3)
large["writer_waits_around_truncate"] = [(round(at - start, 2), round(w, 3)) for at, w in waits
                                         if at + w >= start - 3 and at <= end + 3]

small = []
for _ in range(args.small):
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE probe_fill SET bytes = randomblob(3900) WHERE rowid <= 200")
    db.execute("COMMIT")
    time.sleep(0.05)
    one = truncate(db)
    one.pop("window", None)
    small.append(one)
stop.set()
writer.join()


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else None


done = [s for s in small if "truncate_s" in s]
print(json.dumps({
    "large": large,
    "small": {
        "runs": len(small),
        "truncated": len(done),
        "wal_before_median": median([s["wal_before"] for s in small]),
        "passive_s_median": median([s["passive_s"] for s in small]),
        "truncate_s_median": median([s["truncate_s"] for s in done]),
        "truncate_s_max": max((s["truncate_s"] for s in done), default=None),
        "outcomes": sorted({str(s.get("truncate", "skipped")) for s in small}),
    },
    "writer": {"writes": len(waits), "max": max((w for _, w in waits), default=None)},
}, indent=1))
