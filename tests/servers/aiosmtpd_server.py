#!/usr/bin/env python3
"""A loopback SMTP server for SmtpMailer's end-to-end tests, built on aiosmtpd.

Usage:
    aiosmtpd_server.py PORT OUTDIR [--size-limit N] [--smtputf8]
        [--tls-cert PEM --tls-key PEM [--implicit-tls] [--require-starttls]]
        [--auth-user USER --auth-password PASSWORD [--auth-plaintext]
         [--auth-required]]
        [--idle-timeout SECS] [--rcpt-log PATH] [--connection-log PATH]

PORT 0 lets the OS pick a free port. Once listening, the script prints
`READY <port>` on stdout (flushed). It stops on SIGTERM, SIGINT, or when its
stdin is a pipe or socket and the other end closes it (so a test harness that
dies takes the server with it; a terminal or /dev/null as stdin is ignored).

Every accepted message is stored in OUTDIR as a pair of files, numbered from
000001 in the order the messages were accepted:
    NNNNNN.json  {"mail_from": str, "rcpt_tos": [str], "mail_options": [str],
                  "rcpt_options": [str], "peer_port": int, "session": int,
                  "tls": bool, "tls_version": str|null, "tls_cipher": str|null,
                  "auth_user": str|null, "received_at": float}
    NNNNNN.eml   the DATA content as received, dot-unstuffed, CRLF kept
                 (aiosmtpd's envelope.original_content)
The .json is written first and the .eml last, each through a temporary name
and a rename, so a reader that sees NNNNNN.eml also sees a complete NNNNNN.json.
"session" numbers the connections from 1, so messages sent over one
connection share it. "received_at" is when the server got the end of the
data, in seconds since the Unix epoch (time.time()).

"tls" tells whether the message came over TLS (STARTTLS or implicit), with
the protocol version as Python's ssl names it ("TLSv1.3") and the cipher
suite; "auth_user" is the user name that AUTH succeeded with, else null.

Recipients are answered by their local part (case-insensitive):
    once421*  the first time this server (over its lifetime) sees RCPT for
              that exact address (compared case-insensitively):
              421 4.3.2 Service shutting down, try later, and the server
              closes the connection; every later time 250 OK
    once450*  the first time: 450 4.2.1 Mailbox busy, try later (the
              connection stays open); every later time 250 OK
    refuse*   550 5.1.1 <addr>: mailbox unavailable
    defer*    450 4.2.0 <addr>: try later
    others    250 OK
Any 421 reply the server writes (once421, --idle-timeout) is followed by
closing the connection, as RFC 5321 section 3.8 has it.

--idle-timeout SECS: a connection that sends no command for SECS seconds
    after the server's last reply gets `421 4.4.2 Idle timeout, closing
    connection` and is closed by the server, as Postfix and Exim do. The
    clock also runs while the data of a message is being received, so keep
    messages small with short timeouts. Without it, aiosmtpd's default
    applies: a silent close after 300 s.
--rcpt-log PATH: every RCPT TO the server answers is appended to PATH as
    one JSON line {"session": int, "address": str, "code": int,
    "at": float}: the connection number, the address inside the angle
    brackets as the client wrote it, the reply code, and the time of the
    reply (seconds since the Unix epoch). Lines are flushed one by one.
--connection-log PATH: every accepted connection is appended to PATH as one
    JSON line {"session": int, "at": float}.
Keep both files outside OUTDIR.

TLS (--tls-cert and --tls-key, a PEM certificate chain and its key):
    by default STARTTLS is offered; --require-starttls refuses every command
    but EHLO, HELO, NOOP, QUIT and STARTTLS before it (530).
    --implicit-tls instead speaks TLS from the first byte (as on port 465) and
    offers no STARTTLS.
AUTH (--auth-user and --auth-password): PLAIN and LOGIN, offered only over
    TLS (after STARTTLS, or at once with --implicit-tls) unless
    --auth-plaintext; other credentials get
    `535 5.7.8 Authentication credentials invalid`. --auth-required refuses
    MAIL before AUTH (`530 5.7.0 Authentication required`). Without
    --auth-user no AUTH is offered, and AUTH gets `502 5.5.1`.
"""

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import ssl
import stat
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax


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
    parser.add_argument("--tls-cert", help="PEM certificate (chain) to offer STARTTLS with")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--implicit-tls",
        action="store_true",
        help="speak TLS from the first byte instead of offering STARTTLS",
    )
    parser.add_argument(
        "--require-starttls", action="store_true", help="refuse commands before STARTTLS"
    )
    parser.add_argument("--auth-user", help="offer AUTH PLAIN and LOGIN for this user")
    parser.add_argument("--auth-password", help="the password of --auth-user")
    parser.add_argument(
        "--auth-plaintext", action="store_true", help="offer AUTH without TLS too"
    )
    parser.add_argument("--auth-required", action="store_true", help="refuse MAIL before AUTH")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help="answer 421 4.4.2 and close a connection idle for SECS seconds",
    )
    parser.add_argument("--rcpt-log", help="append one JSON line per RCPT reply to this file")
    parser.add_argument(
        "--connection-log", help="append one JSON line per accepted connection to this file"
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if (args.implicit_tls or args.require_starttls) and args.tls_cert is None:
        parser.error("--implicit-tls and --require-starttls need --tls-cert")
    if args.implicit_tls and args.require_starttls:
        parser.error("--implicit-tls offers no STARTTLS to require")
    if (args.auth_user is None) != (args.auth_password is None):
        parser.error("--auth-user and --auth-password go together")
    if (args.auth_plaintext or args.auth_required) and args.auth_user is None:
        parser.error("--auth-plaintext and --auth-required need --auth-user")
    if args.idle_timeout is not None and args.idle_timeout <= 0:
        parser.error("--idle-timeout must be positive")
    return args


class JsonLines:
    """An append-only file of JSON lines, flushed line by line; no file: no-op."""

    def __init__(self, path):
        self.file = open(path, "a", encoding="utf-8") if path else None

    def write(self, record):
        if self.file is not None:
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.file.flush()


class TestSMTP(SMTP):
    """aiosmtpd's SMTP protocol, numbering each connection it serves.

    It also logs every RCPT reply and every connection, closes the
    connection after any 421 reply, and with an idle timeout says 421
    before closing an idle connection (aiosmtpd alone closes silently).
    """

    _connection_numbers = itertools.count(1)

    def __init__(
        self,
        *args,
        offer_auth=False,
        idle_timeout=None,
        rcpt_log=JsonLines(None),
        connection_log=JsonLines(None),
        **kwargs,
    ):
        if idle_timeout is not None:
            kwargs["timeout"] = idle_timeout
        super().__init__(*args, **kwargs)
        # The factory runs once per accepted connection.
        self.connection_number = next(self._connection_numbers)
        self.idle_timeout = idle_timeout
        self.rcpt_log = rcpt_log
        self.pending_rcpt = None
        connection_log.write({"session": self.connection_number, "at": time.time()})
        self.offer_auth = offer_auth
        if not offer_auth:
            # aiosmtpd would offer PLAIN and LOGIN after STARTTLS regardless.
            self._auth_methods = {}

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname):
        if self.offer_auth:
            return await super().smtp_EHLO(hostname)
        # Drop the "250-AUTH " line that aiosmtpd writes even with no method.
        push = self.push

        async def push_but_auth(line):
            if not line.startswith("250-AUTH"):
                await push(line)

        self.push = push_but_auth
        try:
            await super().smtp_EHLO(hostname)
        finally:
            del self.push

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg):
        if not self.offer_auth:
            await self.push("502 5.5.1 AUTH not available")
            return
        await super().smtp_AUTH(arg)

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg):
        # push() logs the reply with this address.
        self.pending_rcpt = rcpt_address(arg)
        try:
            await super().smtp_RCPT(arg)
        finally:
            self.pending_rcpt = None

    async def push(self, status):
        line = status if isinstance(status, str) else status.decode("utf-8", "replace")
        if self.pending_rcpt is not None:
            address, self.pending_rcpt = self.pending_rcpt, None
            code = int(line[:3]) if line[:3].isdigit() else 0
            self.rcpt_log.write(
                {
                    "session": self.connection_number,
                    "address": address,
                    "code": code,
                    "at": time.time(),
                }
            )
        await super().push(status)
        if line.startswith("421"):
            # 421: the server closes the transmission channel. Stop serving
            # at once, so that no command already buffered gets an answer.
            if self.transport is not None:
                self.transport.close()
            if self._handler_coroutine is not None:
                self._handler_coroutine.cancel()
                await asyncio.sleep(0)
        elif self.idle_timeout is not None:
            # Idle means: no command since the last reply.
            self._reset_timeout()

    def _timeout_cb(self):
        if self.transport is None:
            return
        if self.idle_timeout is not None:
            self._writer.write(b"421 4.4.2 Idle timeout, closing connection\r\n")
        super()._timeout_cb()

    def tls_info(self):
        """(version, cipher) of the TLS session, or None in plaintext."""
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        if ssl_object is None:
            return None
        cipher = ssl_object.cipher()
        return ssl_object.version(), cipher[0] if cipher else None


class Credentials:
    """The authenticator: one user name and password, compared as UTF-8."""

    def __init__(self, user, password):
        self.user = user.encode("utf-8")
        self.password = password.encode("utf-8")

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        # handled=False: aiosmtpd answers 235, or 535 5.7.8 on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def rcpt_address(arg):
    """The address of a RCPT argument (`TO:<addr> PARAMS`), as written."""
    if arg is None:
        return ""
    match = re.search(r"<([^>]*)>", arg)
    if match:
        return match.group(1)
    rest = arg.split(":", 1)[-1].strip()
    return rest.split(" ", 1)[0]


class Store:
    """The handler: answers recipients and writes each message to disk."""

    def __init__(self, outdir):
        self.outdir = outdir
        self.message_numbers = itertools.count(1)
        # The once421* and once450* addresses seen so far, lower-cased.
        self.seen_once = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local_part = address.rsplit("@", 1)[0].lower()
        if local_part.startswith(("once421", "once450")):
            key = address.lower()
            if key not in self.seen_once:
                self.seen_once.add(key)
                if local_part.startswith("once421"):
                    # TestSMTP.push closes the connection after a 421.
                    return "421 4.3.2 Service shutting down, try later"
                return "450 4.2.1 Mailbox busy, try later"
        if local_part.startswith("refuse"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if local_part.startswith("defer"):
            return f"450 4.2.0 <{address}>: try later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.message_numbers)
        tls = server.tls_info()
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode("utf-8", "replace")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "peer_port": session.peer[1] if session.peer else None,
            "session": server.connection_number,
            "tls": tls is not None,
            "tls_version": tls[0] if tls else None,
            "tls_cipher": tls[1] if tls else None,
            "auth_user": auth_user,
            "received_at": time.time(),
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

    server_ssl = None
    if args.tls_cert is not None:
        # A server context: no client certificate asked for.
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.implicit_tls:
            server_ssl = context
        else:
            smtp_options["tls_context"] = context
            smtp_options["require_starttls"] = args.require_starttls
    if args.auth_user is not None:
        smtp_options["authenticator"] = Credentials(args.auth_user, args.auth_password)
        smtp_options["auth_required"] = args.auth_required
        # aiosmtpd knows only STARTTLS as TLS; over implicit TLS the whole
        # connection is encrypted, so AUTH may be offered at once.
        smtp_options["auth_require_tls"] = not (args.auth_plaintext or args.implicit_tls)

    rcpt_log = JsonLines(args.rcpt_log)
    connection_log = JsonLines(args.connection_log)

    def make_protocol():
        return TestSMTP(
            handler,
            loop=loop,
            offer_auth=args.auth_user is not None,
            idle_timeout=args.idle_timeout,
            rcpt_log=rcpt_log,
            connection_log=connection_log,
            **smtp_options,
        )

    server = await loop.create_server(
        make_protocol, host=args.host, port=args.port, ssl=server_ssl
    )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


def main(argv):
    # aiosmtpd sets the deprecated Session.login_data on every AUTH.
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
    args = parse_args(argv)
    os.makedirs(args.outdir, exist_ok=True)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
