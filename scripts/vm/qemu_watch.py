#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Stall watchdog for QEMU guests: used by run-guest.sh (as a program) and boot-console.py.

A guest makes progress when its serial console prints something new, or, for guests of
run-guest.sh, when its heartbeat lines ("KC-GUEST-HB <sectors> <busy-jiffies>", every few
seconds from /init) show block I/O completed or CPU time used. Time QEMU spent waiting for a
host CPU (its threads' run-queue delay, /proc/PID/task/*/schedstat) does not count: a guest
starved by a loaded host is slow, not stalled, while a stalled one sleeps. When there has been
no progress for --stall seconds (or the guest kernel reports a hung task), the watchdog:
  1. writes "KC-GUEST-STALL: ..." into the console log, naming the step (the last command
     traced, or the last console line);
  2. through QEMU's QMP socket: raises the guest's console log level (sysrq 9) and sends
     sysrq w (blocked tasks) and l (backtraces of all CPUs); records each virtio device's
     queue state (QEMU's last_avail_idx/used_idx next to the guest's avail index read from
     guest memory: tells a request QEMU never took from one it never completed) and the
     block statistics, as "KC-GUEST-MONITOR: " lines;
  3. quits QEMU and writes the reason to --status FILE.

Usage: qemu_watch.py --log FILE --qmp SOCKET --stall SECONDS --status FILE [--name NAME]
Exits 0 when the guest ends (KC-GUEST-END or QEMU gone), 3 after a stall.
"""
import argparse
import json
import os
import re
import socket
import sys
import time

HEARTBEAT = re.compile(rb"^KC-GUEST-HB (\d+) (\d+)\s*$")
TRACE = re.compile(rb"^KC-GUEST-TRACE: ?(.*)$")
HUNG = re.compile(rb"INFO: task .* blocked for more than \d+ seconds")
# CPU time (USER_HZ jiffies) one heartbeat interval must show to count as work: the heartbeat
# itself costs a few jiffies under emulation, a busy guest hundreds.
BUSY_JIFFIES = 40


class Qmp:
    """A minimal QMP client (QEMU's JSON monitor) on a unix socket."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self._read()  # greeting
        self.call("qmp_capabilities")

    def _read(self):
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 1:]
                return json.loads(line)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP socket closed")
            self.buf += chunk

    def call(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"{cmd}: {reply['error'].get('desc')}")
            return reply.get("return")

    def hmp(self, line):
        return self.call("human-monitor-command", **{"command-line": line}) or ""

    def close(self):
        self.sock.close()


def connect(path, wait=0.0):
    """Connect to QMP at path, waiting up to `wait` seconds for the socket to appear."""
    end = time.monotonic() + wait
    while True:
        try:
            return Qmp(path)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() >= end:
                raise
            time.sleep(0.2)


def queue_report(qmp):
    """Lines describing every virtio queue: QEMU's view next to the guest's avail index."""
    out = []
    for line in qmp.hmp("info virtio").splitlines():
        m = re.match(r"^(\S+) \[(\S+)\]", line.strip())
        if not m:
            continue
        path, kind = m.groups()
        for q in range(16):
            try:
                st = qmp.call("x-query-virtio-queue-status", path=path, queue=q)
            except RuntimeError:
                break
            guest_avail = "?"
            avail = st.get("vring-avail", 0)
            if avail:
                m2 = re.search(r":\s*(0x[0-9a-f]+)", qmp.hmp(f"xp /1hx {avail + 2}"))
                if m2:
                    guest_avail = int(m2.group(1), 16)
            out.append(f"{path} [{kind}] queue {q}: guest avail_idx={guest_avail} "
                       f"last_avail_idx={st.get('last-avail-idx')} "
                       f"shadow_avail_idx={st.get('shadow-avail-idx')} "
                       f"used_idx={st.get('used-idx')} inuse={st.get('inuse')} "
                       f"signalled_used={st.get('signalled-used')}")
    return out


def dump_guest(qmp_path, write):
    """Ask the guest kernel for its blocked tasks and CPU backtraces (sysrq 9, w, l through
    the emulated keyboard), and record QEMU's view of the virtio queues and block devices.
    `write` takes one text line for the log. Errors are recorded, never raised."""
    try:
        qmp = connect(qmp_path)
    except Exception as e:  # noqa: BLE001 (whatever happened, the dump is best effort)
        write(f"KC-GUEST-MONITOR: cannot reach QMP: {e}")
        return
    try:
        for key in ("9", "w", "l"):
            qmp.hmp(f"sendkey alt-sysrq-{key}")
            time.sleep(0.5)
        for line in queue_report(qmp):
            write(f"KC-GUEST-MONITOR: {line}")
        for line in qmp.hmp("info blockstats").splitlines():
            if line.strip():
                write(f"KC-GUEST-MONITOR: {line.strip()}")
        # The guest prints the sysrq output on its (emulated, slow) serial line.
        time.sleep(8)
    except Exception as e:  # noqa: BLE001
        write(f"KC-GUEST-MONITOR: {e}")
    finally:
        qmp.close()


def quit_qemu(qmp_path):
    try:
        qmp = connect(qmp_path)
        qmp.call("quit")
        qmp.close()
    except Exception:  # noqa: BLE001 (QEMU already gone)
        pass


def find_qemu(qmp_path):
    """The pid of the QEMU whose command line names QMP_PATH, or None."""
    want = qmp_path.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"qemu-system" in os.path.basename(args[0]) and any(want in x for x in args):
            return int(d)
    return None


def run_queue_waits(pid):
    """Each thread's time waiting for a CPU (ns), from /proc/PID/task/TID/schedstat."""
    waits = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return waits
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                waits[tid] = int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return waits


class Progress:
    """Tracks when a guest last made progress, from its console output; with QMP (the socket
    path on QEMU's command line), time QEMU waited for a host CPU is not counted as idle."""

    def __init__(self, qmp=None):
        self.last = time.monotonic()
        self.last_line = b""
        self.last_trace = b""
        self.hb = None
        self.hung = False
        self.qmp = qmp
        self.pid = None
        self.waits = {}
        self.sampled = self.last
        self.starved = 0.0  # seconds since self.last that QEMU waited for a host CPU

    def made_progress(self, now):
        self.last = now
        self.starved = 0.0

    def sample(self):
        """Add the time QEMU's most delayed thread waited for a CPU since the last sample."""
        now = time.monotonic()
        span, self.sampled = now - self.sampled, now
        if self.qmp is None:
            return
        if self.pid is None:
            self.pid = find_qemu(self.qmp)
            if self.pid is None:
                return
        waits = run_queue_waits(self.pid)
        delta = max((w - self.waits.get(t, w) for t, w in waits.items()), default=0) / 1e9
        self.waits = waits
        self.starved += min(max(delta, 0.0), span)

    def line(self, line):
        now = time.monotonic()
        m = HEARTBEAT.match(line)
        if m:
            io, cpu = int(m.group(1)), int(m.group(2))
            if self.hb is not None and (io != self.hb[0] or cpu - self.hb[1] >= BUSY_JIFFIES):
                self.made_progress(now)
            self.hb = (io, cpu)
            return
        if HUNG.search(line):
            self.hung = True
        if not line.strip():
            return
        self.made_progress(now)
        t = TRACE.match(line)
        if t:
            self.last_trace = t.group(1)
        else:
            self.last_line = line

    def idle(self):
        """Seconds without progress, less those QEMU waited for a host CPU."""
        self.sample()
        return max(time.monotonic() - self.last - self.starved, 0.0)

    def step(self):
        """What the guest was doing: its last traced command, else its last console line."""
        if self.last_trace:
            return "last command: " + self.last_trace.decode(errors="replace").strip()
        if self.last_line:
            return "last console line: " + self.last_line.decode(errors="replace").strip()
        return "nothing printed yet"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--qmp", required=True)
    ap.add_argument("--stall", type=float, required=True)
    ap.add_argument("--status", required=True)
    ap.add_argument("--name", default="guest")
    a = ap.parse_args()

    prog = Progress(a.qmp)
    pending = b""
    pos = 0
    seen_qemu = False
    while True:
        time.sleep(0.5)
        try:
            with open(a.log, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = b""
        pos += len(data)
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if line.endswith(b"KC-GUEST-END"):
                return 0
            prog.line(line)
        alive = os.path.exists(a.qmp)
        seen_qemu = seen_qemu or alive
        if seen_qemu and not alive:
            return 0  # QEMU went away (its socket is removed on exit)
        if prog.idle() < a.stall and not prog.hung:
            continue
        why = ("the guest kernel reports a hung task" if prog.hung
               else f"no progress for {prog.idle():.0f} s")
        msg = f"KC-GUEST-STALL: {a.name}: {why} ({prog.step()})"

        first = [True]

        def write(text):
            # The first line also ends whatever partial line the console was printing.
            with open(a.log, "ab") as f:
                f.write((b"\n" if first[0] else b"") + text.encode() + b"\n")
            first[0] = False

        write(msg)
        dump_guest(a.qmp, write)
        quit_qemu(a.qmp)
        with open(a.status, "w") as f:
            f.write(msg + "\n")
        return 3


if __name__ == "__main__":
    sys.exit(main())
