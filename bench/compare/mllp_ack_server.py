#!/usr/bin/env python3
"""A minimal MLLP listener on python-hl7's asyncio server (`hl7.mllp.start_hl7_server`).

For every framed message it parses the block with `hl7.parse` and answers an
original-mode ACK built by python-hl7 (`Message.create_ack`): MSA-1 = AA,
MSA-2 = the message's MSH-10. It stores nothing, checks nothing beyond the
parse, and writes no log: this is the transport + parse ceiling of a Python
listener, to set next to `rhip serve`, which commits every message before its
ACK. A block that does not parse gets a hand-built ACK with MSA-1 = AR.

Prints `mllp 127.0.0.1:PORT` (flushed) once listening, so a script can find
the port (`--port 0` picks a free one). Stops on SIGTERM or SIGINT and then
prints one JSON line with the counts on stderr.
"""

import argparse
import asyncio
import json
import signal
import sys
import time

import hl7
from hl7.mllp import start_hl7_server

counts = {"AA": 0, "AR": 0, "connections": 0}


def reject(block: bytes) -> bytes:
    """A bare AR ACK for a block python-hl7 could not parse."""
    control = ""
    first = block.split(b"\r", 1)[0]
    if first.startswith(b"MSH") and len(first) > 3:
        fields = first.split(first[3:4])
        if len(fields) > 9:
            control = fields[9].decode("utf-8", "replace")
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    return f"MSH|^~\\&|ACKSRV||||{stamp}||ACK|{stamp}|P|2.5\rMSA|AR|{control}\r".encode("utf-8")


async def handle(reader, writer):
    counts["connections"] += 1
    try:
        while True:
            try:
                block = await reader.readblock()
            except asyncio.IncompleteReadError:
                break  # the sender closed the connection
            try:
                message = hl7.parse(block.decode("utf-8"))
                ack = message.create_ack("AA")
                writer.writemessage(ack)
                counts["AA"] += 1
            except Exception:
                writer.writeblock(reject(block))
                counts["AR"] += 1
            await writer.drain()
    except (ConnectionError, hl7.mllp.InvalidBlockError, ValueError):
        pass
    finally:
        writer.close()


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await start_hl7_server(handle, host, port, encoding="utf-8", limit=1 << 20)
    bound = server.sockets[0].getsockname()
    print(f"python-hl7 ACK server ready: mllp {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await stop.wait()
        server.close()
    print(json.dumps({"server": "python-hl7 ACK", "acks": counts}), file=sys.stderr, flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="port to listen on; 0 (default) picks a free one")
    args = ap.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
