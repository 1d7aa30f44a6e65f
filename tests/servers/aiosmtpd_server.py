#!/usr/bin/env python3
"""A loopback SMTP server for SmtpMailer's end-to-end tests, built on aiosmtpd.

Usage:
    aiosmtpd_server.py PORT OUTDIR [--size-limit N] [--smtputf8]

PORT 0 lets the OS pick a free port. Once listening, the script prints
`READY <port>` on stdout (flushed). It stops on SIGTERM, SIGINT, or when its
stdin is a pipe or socket and the other end closes it (so a test harness that
dies takes the server with it; a terminal or /dev/null as stdin is ignored).

Every accepted message is stored in OUTDIR as a pair of files, numbered from
000001 in the order the messages were accepted:
    NNNNNN.json  {"mail_from": str, "rcpt_tos": [str], "mail_options": [str],
                  "rcpt_options": [str], "peer_port": int, "session": int}
    NNNNNN.eml   the DATA content as received, dot-unstuffed, CRLF kept
                 (aiosmtpd's envelope.original_content)
The .json is written first and the .eml last, each through a temporary name
and a rename, so a reader that sees NNNNNN.eml also sees a complete NNNNNN.json.
"session" numbers the connections from 1, so messages sent over one
connection share it.

Recipients are answered by their local part:
    refuse*  550 5.1.1 <addr>: mailbox unavailable
    defer*   450 4.2.0 <addr>: try later
    others   250 OK
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import stat
import sys

from aiosmtpd.smtp import SMTP


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int, help="TCP port on 127.0.0.1, 0 to let the OS pick")
    parser.add_argument("outdir", help="directory that receives NNNNNN.eml and NNNNNN.json")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--size-limit",
        type=int,
        default=None,
        help="advertise SIZE N and refuse larger messages (default: aiosmtpd's 32 MiB)",
    )
    parser.add_argument("--smtputf8", action="store_true", help="advertise and accept SMTPUTF8")
    # TLS options (e.g. --tls-cert/--tls-key for STARTTLS) belong here; they
    # become an ssl.SSLContext passed as `tls_context` in make_protocol().
    return parser.parse_args(argv)


class TestSMTP(SMTP):
    """aiosmtpd's SMTP protocol, numbering each connection it serves."""

    _connection_numbers = itertools.count(1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connection_number = next(self._connection_numbers)


class Store:
    """The handler: answers recipients and writes each message to disk."""

    def __init__(self, outdir):
        self.outdir = outdir
        self.message_numbers = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local_part = address.rsplit("@", 1)[0].lower()
        if local_part.startswith("refuse"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if local_part.startswith("defer"):
            return f"450 4.2.0 <{address}>: try later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.message_numbers)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "peer_port": session.peer[1] if session.peer else None,
            "session": server.connection_number,
        }
        base = os.path.join(self.outdir, f"{number:06d}")
        write_atomically(base + ".json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        write_atomically(base + ".eml", envelope.original_content)
        return "250 OK"


def write_atomically(path, data):
    temp = path + ".tmp"
    with open(temp, "wb") as f:
        f.write(data)
    os.replace(temp, path)


def watch_stdin(loop, stop):
    """Sets `stop` when stdin, if it is a pipe or a socket, reaches end of file."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return

    def on_readable():
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    os.set_blocking(fd, False)
    loop.add_reader(fd, on_readable)


async def serve(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watch_stdin(loop, stop)

    handler = Store(args.outdir)
    smtp_options = {"enable_SMTPUTF8": args.smtputf8, "hostname": "aiosmtpd.test"}
    if args.size_limit is not None:
        smtp_options["data_size_limit"] = args.size_limit

    def make_protocol():
        return TestSMTP(handler, loop=loop, **smtp_options)

    server = await loop.create_server(make_protocol, host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


def main(argv):
    args = parse_args(argv)
    os.makedirs(args.outdir, exist_ok=True)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
