#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Drive a booting guest's serial console (QEMU -nographic on stdin/stdout).

Usage: boot-console.py --log FILE --timeout S --done REGEX [--answer REGEX=FILE ...]
                       [--mark REGEX ...] [--stall S --qmp SOCKET] -- COMMAND...

Runs COMMAND, copies everything it prints to FILE, and answers each --answer REGEX, the first
time it appears, with the first line of FILE (e.g. a recovery key typed at a prompt; read
when needed, written only to the guest's stdin). Prints "seen <seconds> <regex>" for every
--mark, --answer and --done regex when it first appears. Exits 0 once --done has appeared
(then, after at most 2 s more of output, the guest is killed: its disks are snapshots), 124 on
timeout, 1 if COMMAND ends first.
With --stall S, a guest that prints nothing for S seconds (or whose kernel reports a hung
task) has its blocked tasks and QEMU's queue state dumped into the log through the QMP socket
that COMMAND's QEMU listens on (--qmp; see qemu_watch.py), and the run ends at once with 124
and a "KC-GUEST-STALL: ..." line.
"""
import argparse
import os
import re
import resource
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_watch  # noqa: E402 (next to this script)


def stall(a, progress, log):
    """Record a stall in the log with the guest's blocked tasks; return its description."""
    why = ("the guest kernel reports a hung task" if progress.hung
           else f"no progress for {progress.idle():.0f} s")
    msg = f"KC-GUEST-STALL: {os.path.basename(a.log)}: {why} ({progress.step()})"
    log.write(b"\n" + msg.encode() + b"\n")
    log.flush()

    def write(text):
        log.write(text.encode() + b"\n")
        log.flush()

    qemu_watch.dump_guest(a.qmp, write)
    return msg


def drain(proc, log, quiet=2.0, limit=20.0):
    """Copy what the guest still prints (its sysrq output) until it is quiet."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], quiet)
        if not r:
            return
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            return
        log.write(chunk)
        log.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--done", required=True)
    ap.add_argument("--answer", action="append", default=[])
    ap.add_argument("--mark", action="append", default=[])
    ap.add_argument("--stall", type=float, default=0)
    ap.add_argument("--qmp")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    answers = []
    for spec in a.answer:
        rx, _, path = spec.rpartition("=")
        answers.append((re.compile(rx.encode()), path))
    marks = [re.compile(m.encode()) for m in a.mark]
    done = re.compile(a.done.encode())

    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    seen = bytearray()
    scanned = {}  # regex -> already reported
    status = None
    progress = qemu_watch.Progress(a.qmp)
    pending = b""
    stalled = None
    with open(a.log, "wb") as log:
        while status is None:
            left = a.timeout - (time.monotonic() - start)
            if left <= 0:
                status = 124
                break
            if a.stall and a.qmp and (progress.idle() >= a.stall or progress.hung):
                stalled = stall(a, progress, log)
                drain(proc, log)
                status = 124
                break
            r, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
            if not r:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                status = 1
                break
            log.write(chunk)
            log.flush()
            seen += chunk
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                progress.line(line.rstrip(b"\r"))
            now = time.monotonic() - start
            for rx in marks + [rx for rx, _ in answers] + [done]:
                if rx in scanned or not rx.search(seen):
                    continue
                scanned[rx] = True
                print(f"seen {now:.1f} {rx.pattern.decode()}", flush=True)
                for arx, path in answers:
                    if arx is rx:
                        with open(path, "rb") as f:
                            line = f.readline().strip()
                        # A moment for the prompt to start reading.
                        time.sleep(1)
                        proc.stdin.write(line + b"\r")
                        proc.stdin.flush()
                if rx is done:
                    status = 0
        if status == 0:
            # The rest of the marker's line, then the guest is ended: its disks are QEMU
            # snapshots, so its shutdown would only cost CPU (20 to 60 s of it under
            # emulation, on a host shared with the other boots and tests).
            drain(proc, log, quiet=0.5, limit=2.0)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        else:
            # Whatever the guest printed last.
            rest = proc.stdout.read()
            if rest:
                log.write(rest)
    # What the guest cost the host (QEMU, the only child waited for), for the tests' logs.
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"boot-console: QEMU used {used.ru_utime + used.ru_stime:.0f} s of CPU",
          file=sys.stderr)
    if stalled:
        print(f"boot-console: {stalled}", file=sys.stderr)
    elif status == 124:
        print(f"boot-console: timed out after {a.timeout:.0f} s", file=sys.stderr)
    elif status == 1:
        print("boot-console: the guest stopped before the done marker", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
