"""A local SMS gateway for Tresor's tests: an HTTP server that takes what a bank posts to its
SMS gateway, as a real one would, and keeps it for the test to read.

    sms_gateway.py OUT PORT
        Listens on 127.0.0.1:PORT. A POST or PUT whose X-Api-Key header is the value of
        SMS_API_KEY is answered 202 and its body written to OUT/<ns>.json with its
        Content-Type; any other request is answered 401 and kept nowhere. Prints `ready`,
        then runs until its standard input closes.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out, port = sys.argv[1], int(sys.argv[2])
key = os.environ["SMS_API_KEY"]


class Gateway(BaseHTTPRequestHandler):
    def take(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("X-Api-Key") != key:
            self.send_response(401)
            self.end_headers()
            return
        name = os.path.join(out, "%d.json" % time.time_ns())
        with open(name + ".tmp", "w") as f:
            json.dump({"content_type": self.headers.get("Content-Type"), "body": body.decode()}, f)
        os.rename(name + ".tmp", name)
        self.send_response(202)
        self.end_headers()

    do_POST = take
    do_PUT = take

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Gateway)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
server.shutdown()
