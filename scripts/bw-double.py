#!/usr/bin/env python3
"""A local stand-in for Bitwarden, used only by scripts/bench-ldap.sh to time `dirsync sync`:
it answers the token request, lists an empty organization (members and groups) and accepts
imports. It reads every request body to its end (so the sender pays for the whole upload) and
counts what it received; it checks nothing else. Serves until killed.

Usage: bw-double.py PORT_FILE   (writes the port it listens on to PORT_FILE)"""
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    imports = 0
    body_bytes = 0

    def log_message(self, *args):
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        Handler.body_bytes += length - left
        return length - left

    def reply(self, status, body):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.read_body()
        if self.path.endswith("/connect/token"):
            self.reply(200, {"access_token": "bench-token", "expires_in": 3600, "token_type": "Bearer"})
        elif self.path.endswith("/public/organization/import"):
            Handler.imports += 1
            self.reply(200, None)
        else:
            self.reply(404, {"object": "error", "message": "not found"})

    def do_GET(self):
        if self.path.split("?")[0].endswith(("/public/members", "/public/groups")):
            self.reply(200, {"object": "list", "data": [], "continuationToken": None})
        elif self.path == "/stats":
            self.reply(200, {"imports": Handler.imports, "bodyBytes": Handler.body_bytes})
        else:
            self.reply(404, {"object": "error", "message": "not found"})


# Threads: a client may keep one connection idle in its pool while it sends on another.
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
