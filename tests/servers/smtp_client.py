#!/usr/bin/env python3
"""A reference SMTP client, Python's smtplib and ssl, that checks the test
servers' TLS and AUTH fixtures independently of SmtpMailer.

Usage:
    smtp_client.py PORT [--tls none|starttls|implicit] [--cafile PEM]
        [--server-name NAME] [--user USER --password PASSWORD
        [--mechanism PLAIN|LOGIN]] [--mail-from ADDR --rcpt-to ADDR...]

Connects to 127.0.0.1:PORT; with TLS it verifies the server's certificate
against --cafile (required) and the name --server-name (default localhost).
Then EHLO, STARTTLS and EHLO again if asked, AUTH with the given mechanism if
--user (PLAIN with an initial response, LOGIN answering its two prompts;
UTF-8), one message if --mail-from, QUIT. Prints one JSON object on stdout and
exits 0 whatever the server did:
    {"ok": bool, "stage": "connect"|"starttls"|"auth"|"mail"|"done",
     "code": int|null, "error": str|null, "verify_message": str|null,
     "ehlo": [str], "ehlo_tls": [str], "tls_version": str|null}
"stage" is where it stopped; "code" the SMTP reply code that stopped it;
"verify_message" OpenSSL's reason when certificate verification failed;
"ehlo" and "ehlo_tls" the EHLO keywords (upper case) before and after STARTTLS.
"""

import argparse
import base64
import json
import smtplib
import socket
import ssl
import sys

MESSAGE = (
    b"From: alice@example.test\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: reference client\r\n"
    b"\r\n"
    b"Sent by smtp_client.py.\r\n"
)
TIMEOUT = 10


class ImplicitTLS(smtplib.SMTP_SSL):
    """SMTP_SSL that connects to one address and verifies another name."""

    def __init__(self, server_name, **kwargs):
        self.server_name = server_name
        super().__init__(**kwargs)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self.server_name)


def authenticate(client, mechanism, user, password):
    """AUTH PLAIN with an initial response, or AUTH LOGIN answering both
    prompts; credentials as UTF-8 (smtplib's own auth() allows ASCII only)."""

    def b64(text):
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    if mechanism == "PLAIN":
        code, reply = client.docmd("AUTH", "PLAIN " + b64(f"\0{user}\0{password}"))
    else:
        code, reply = client.docmd("AUTH", "LOGIN")
        for answer in (user, password):
            if code != 334:
                break
            code, reply = client.docmd(b64(answer))
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def keywords(client):
    return sorted(k.upper() for k in client.esmtp_features)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cafile")
    parser.add_argument("--server-name", default="localhost")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--mechanism", choices=["PLAIN", "LOGIN"], default="PLAIN")
    parser.add_argument("--mail-from")
    parser.add_argument("--rcpt-to", action="append", default=[])
    args = parser.parse_args(argv)

    context = None
    if args.tls != "none":
        if args.cafile is None:
            parser.error("--tls needs --cafile")
        context = ssl.create_default_context(cafile=args.cafile)

    result = {
        "ok": False,
        "stage": "connect",
        "code": None,
        "error": None,
        "verify_message": None,
        "ehlo": [],
        "ehlo_tls": [],
        "tls_version": None,
    }
    client = None
    try:
        if args.tls == "implicit":
            client = ImplicitTLS(args.server_name, context=context, timeout=TIMEOUT)
        else:
            client = smtplib.SMTP(timeout=TIMEOUT)
        client.connect("127.0.0.1", args.port)
        client.ehlo("client.test")
        result["ehlo"] = keywords(client)
        if args.tls == "starttls":
            result["stage"] = "starttls"
            # smtplib verifies the name it connected to; make it `--server-name`.
            client._host = args.server_name
            client.starttls(context=context)
            client.ehlo("client.test")
            result["ehlo_tls"] = keywords(client)
        if args.tls != "none":
            result["tls_version"] = client.sock.version()
        if args.user is not None:
            result["stage"] = "auth"
            authenticate(client, args.mechanism, args.user, args.password or "")
        if args.mail_from is not None:
            result["stage"] = "mail"
            client.sendmail(args.mail_from, args.rcpt_to, MESSAGE)
        result["stage"] = "done"
        result["ok"] = True
        client.quit()
    except ssl.SSLCertVerificationError as e:
        result["error"] = str(e)
        result["verify_message"] = e.verify_message
    except smtplib.SMTPRecipientsRefused as e:
        codes = [code for code, _ in e.recipients.values()]
        result["code"] = codes[0] if codes else None
        result["error"] = str(e)
    except smtplib.SMTPResponseException as e:
        result["code"] = e.smtp_code
        result["error"] = e.smtp_error.decode("utf-8", "replace")
    except (smtplib.SMTPException, OSError) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if client is not None:
            client.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
