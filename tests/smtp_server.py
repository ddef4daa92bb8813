"""A real SMTP server on loopback for Tresor's mail tests (aiosmtpd, from PyPI), and a reader
of the mails it saved (Python's `email` package: an independent MIME parser).

    smtp_server.py serve OUT PORT [CERT KEY]
        Takes mail on 127.0.0.1:PORT and writes each message to OUT/<ns>.eml. With CERT and
        KEY it requires STARTTLS and then AUTH (login `bank`, the password in SMTP_PASSWORD);
        without, plain SMTP (a bank allows that on loopback only). Prints `ready`, then runs
        until its standard input closes.
    smtp_server.py read FILE
        Prints [to, subject, plain text, html] of a saved mail as JSON.
"""

import email
import email.policy
import json
import os
import ssl
import sys
import time


def serve(out, port, cert=None, key=None):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    class Save:
        async def handle_DATA(self, server, session, envelope):
            name = os.path.join(out, "%d.eml" % time.time_ns())
            with open(name + ".tmp", "wb") as f:
                f.write(envelope.original_content)
            os.rename(name + ".tmp", name)
            return "250 OK"

    options = {}
    if cert:
        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == b"bank" and auth_data.password == os.environb[b"SMTP_PASSWORD"]
            return AuthResult(success=ok)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        options = dict(server_hostname="localhost", tls_context=context, require_starttls=True,
                       auth_require_tls=True, auth_required=True, authenticator=authenticate)
    server = Controller(Save(), hostname="127.0.0.1", port=port, **options)
    server.start()
    print("ready", flush=True)
    sys.stdin.read()
    server.stop()


def read(path):
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    text = m.get_body(preferencelist=("plain",)).get_content()
    html = m.get_body(preferencelist=("html",)).get_content()
    print(json.dumps([str(m["To"]), str(m["Subject"]), text, html]))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), *sys.argv[4:6])
    elif sys.argv[1] == "read":
        read(sys.argv[2])
    else:
        sys.exit("usage: smtp_server.py serve OUT PORT [CERT KEY] | read FILE")
