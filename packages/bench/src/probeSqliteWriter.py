#!/usr/bin/env python3
"""
A second writer of a sync's SQLite file, timing how long it waits for the file's write lock:
`python3 src/probeSqliteWriter.py FILE.sqlite --pid PID [--out LOG.jsonl]`, started beside `intercom-scroll sync`
(its PID), stopped with SIGTERM or Ctrl-C once the sync has exited; or `--pid 0` to run until stopped.

Every 0.2 s a one-row `BEGIN IMMEDIATE` transaction in a table of its own (busy timeout 300 s, its own automatic
checkpoints off, so that it times the lock alone), as an app or a second sync writing the same file would. Every 0.5 s
a sample: the WAL file's size, the sync's bytes written (/proc/PID/io) and CPU seconds (/proc/PID/stat), and the last
run's row (status, deleted). At the end a summary on stdout: the waits over the whole run, and over the deletion pass's
marking (from the first sample whose run had marked a row, less the longest wait, to the run recorded complete).
"""
import argparse
import json
import os
import signal
import sqlite3
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("file")
parser.add_argument("--pid", type=int, default=0)
parser.add_argument("--out", default=None)
parser.add_argument("--every", type=float, default=0.2)
args = parser.parse_args()

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())

waits = []  # (started, seconds waited for the lock and the commit)
samples = []  # (at, wal bytes, written bytes, cpu seconds, status, deleted)
ticks = os.sysconf("SC_CLK_TCK")


def write_loop():
    db = sqlite3.connect(args.file, timeout=300, isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute("CREATE TABLE IF NOT EXISTS probe_writes (at REAL NOT NULL, waited REAL NOT NULL)")
    while not stop.is_set():
        started = time.time()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO probe_writes (at, waited) VALUES (?, 0)", (started,))
        db.execute("COMMIT")
        waited = time.time() - started
        waits.append((started, waited))
        stop.wait(args.every)
    db.close()


def proc(pid):
    if pid == 0:
        return None, None
    try:
        with open(f"/proc/{pid}/io") as io:
            written = int(next(line for line in io if line.startswith("write_bytes")).split()[1])
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / ticks
        return written, cpu
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return None, None


def sample_loop():
    reader = sqlite3.connect(f"file:{args.file}?mode=ro", uri=True, timeout=5)
    try:
        first_run = reader.execute("SELECT coalesce(max(id), 0) FROM intercom_sync_runs WHERE status <> 'running'").fetchone()[0]
    except sqlite3.Error:
        first_run = 0
    while not stop.is_set():
        try:
            wal = os.path.getsize(args.file + "-wal")
        except FileNotFoundError:
            wal = 0
        written, cpu = proc(args.pid)
        try:
            # The newest run, once it is one the sync began after the probe started.
            row = reader.execute("SELECT status, deleted FROM intercom_sync_runs WHERE id > ? ORDER BY id DESC LIMIT 1",
                                 (first_run,)).fetchone()
        except sqlite3.Error:
            row = None
        samples.append((time.time(), wal, written, cpu, row[0] if row else None, row[1] if row else None))
        stop.wait(0.5)
    reader.close()


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def summary(window):
    values = [w for _, w in window]
    return {
        "writes": len(values),
        "p50": percentile(values, 0.5),
        "p90": percentile(values, 0.9),
        "max": max(values) if values else None,
        "over_1s": sum(1 for v in values if v > 1),
    }


threads = [threading.Thread(target=write_loop), threading.Thread(target=sample_loop)]
for thread in threads:
    thread.start()
while not stop.is_set():
    stop.wait(0.5)
    if args.pid and not os.path.exists(f"/proc/{args.pid}"):
        stop.set()
for thread in threads:
    thread.join()

if args.out:
    with open(args.out, "w") as out:
        for at, waited in waits:
            out.write(json.dumps({"wait": at, "waited": waited}) + "\n")
        for at, wal, written, cpu, status, deleted in samples:
            out.write(json.dumps({"sample": at, "wal": wal, "written": written, "cpu": cpu, "status": status, "deleted": deleted}) + "\n")

longest = max((w for _, w in waits), default=0)
marking_from = next((at for at, *_rest, deleted in samples if deleted), None)
marking_to = next((at for at, *_rest, status, _ in samples if status == "complete"), None)
result = {"all": summary(waits), "wal_peak": max((s[1] for s in samples), default=0),
          "written": next((s[2] for s in reversed(samples) if s[2] is not None), None),
          "cpu": next((s[3] for s in reversed(samples) if s[3] is not None), None)}
if marking_from is not None:
    end = marking_to if marking_to is not None else float("inf")
    result["marking"] = summary([(at, w) for at, w in waits if marking_from - longest <= at <= end])
    result["marking_seconds"] = (marking_to or samples[-1][0]) - marking_from
print(json.dumps(result, indent=1))
