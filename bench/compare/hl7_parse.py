#!/usr/bin/env python3
"""Times python-hl7's `hl7.parse` on the messages of an `rhip synth` traffic file.

The file is split into messages the way `rhip hl7 send` and `rhip bench parse
--from` split it (a message starts at a line beginning with MSH; blank lines
and batch envelopes FHS/BHS/BTS/FTS between messages are dropped; line ends
become the segment separator \\r). Splitting and reading the file are outside
the timing. Each message is handed to `hl7.parse` as bytes, so the UTF-8
decoding is inside the timing, as it is for a reader that takes bytes off the
wire. After parsing, MSH-9, MSH-10 and PID-3 (first repetition, first
component) are read as strings so the work includes extracting a few fields.

One warm-up pass over all messages, then `--repeat` timed passes; prints one
JSON line.
"""

import argparse
import json
import platform
import sys
import time

import hl7

try:
    from importlib.metadata import version as _dist_version

    HL7_VERSION = _dist_version("hl7")
except Exception:  # pragma: no cover - very old Pythons
    HL7_VERSION = getattr(hl7, "__version__", "unknown")


def split_messages(data: bytes) -> list:
    """Same rules as rhip's `split_messages` (crates/rhip/src/commands/hl7.rs)."""
    data = data.replace(b"\r\n", b"\n")
    messages = []
    current = None
    for line in data.replace(b"\r", b"\n").split(b"\n"):
        if line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if line.startswith(b"MSH"):
            if current is not None:
                messages.append(b"".join(current))
            current = []
        blank = line.strip() == b""
        envelope = line[:3] in (b"FHS", b"BHS", b"BTS", b"FTS")
        if current is None:
            continue
        if not blank and not envelope:
            current.append(line + b"\r")
        elif blank:
            messages.append(b"".join(current))
            current = None
    if current is not None:
        messages.append(b"".join(current))
    return messages


def parse_all(messages: list) -> tuple:
    """Parses every message and reads a few fields; returns (parsed, touched, failed)."""
    parse = hl7.parse
    parsed = touched = failed = 0
    for raw in messages:
        try:
            message = parse(raw)
        except Exception:
            failed += 1
            continue
        parsed += 1
        try:
            msh = message.segment("MSH")
            # MSH-9 (message type) and MSH-10 (control id); python-hl7's
            # call notation is 1-based and counts MSH-1 as the field separator.
            kind = str(msh(9))
            control = str(msh(10))
            # PID-3, first repetition, first component (python-hl7 keeps a
            # field without separators as a plain string; extract_field copes).
            patient_id = message.extract_field("PID", 1, 3, 1, 1)
            if kind and control and patient_id:
                touched += 1
        except (KeyError, IndexError):
            # No PID segment (or a short one): the parse still counts.
            pass
    return parsed, touched, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", help="traffic file written by `rhip synth` (traffic/<county>.hl7)")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes over all messages (default 1)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    with open(args.file, "rb") as f:
        messages = split_messages(f.read())
    if not messages:
        print(f"{args.file}: no HL7 messages found", file=sys.stderr)
        return 2
    size = sum(len(m) for m in messages)

    parse_all(messages)  # warm-up pass
    parsed = touched = failed = 0
    started = time.perf_counter()
    for _ in range(args.repeat):
        p, t, f = parse_all(messages)
        parsed, touched, failed = parsed + p, touched + t, failed + f
    seconds = time.perf_counter() - started

    total = len(messages) * args.repeat
    summary = {
        "benchmark": "hl7-parse",
        "tool": f"python-hl7 {HL7_VERSION}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "file": args.file,
        "repeat": args.repeat,
        "messages": total,
        "parsed": parsed,
        "failed": failed,
        "messages_with_pid3": touched,
        "bytes": size * args.repeat,
        "seconds": seconds,
        "messages_per_second": total / seconds,
        "megabytes_per_second": size * args.repeat / seconds / 1e6,
    }
    print(json.dumps(summary))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
