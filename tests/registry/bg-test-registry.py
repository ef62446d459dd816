#!/usr/bin/python3
"""The registry tests' own servers (test instruments, never installed).

  token  a Docker-style token server: Basic credentials checked against
         --user NAME:PASSWORD:ACTIONS, anonymous pulls of repositories
         outside private/, RS256 JWTs signed (by openssl, argv only) with a
         key whose certificate the registry trusts (rootcertbundle).
  front  a reverse proxy in front of the registry that answers every blob
         GET with a 307 to --cdn, the way registries send blobs to a CDN.
  cdn    serves blobs from the registry's storage directory, and refuses
         (and logs) any request that carries an Authorization header.

Every server serves TLS (--cert/--key), picks its port itself and writes it
to --port-file, logs one line per request to --log (never a credential),
and exits when its parent dies (the test sets PDEATHSIG) or on SIGTERM."""

import argparse
import base64
import http.client
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

LOG_LOCK = threading.Lock()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def log(args, line):
    with LOG_LOCK, open(args.log, "a") as f:
        f.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ---- token ----
    def token(self):
        a = self.server.args
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            return self.reply(404)
        q = urllib.parse.parse_qs(url.query)
        account = None
        granted_all = []
        auth = self.headers.get("Authorization")
        if auth is not None:
            m = re.fullmatch(r"Basic ([A-Za-z0-9+/=]+)", auth)
            try:
                user, _, password = base64.b64decode(m.group(1)).decode().partition(":")
            except Exception:
                log(a, "GET /token auth=malformed -> 400")
                return self.reply(400)
            known = {u.split(":")[0]: u.split(":") for u in a.user}
            if user not in known or known[user][1] != password:
                log(a, "GET /token auth=basic user=%s -> 401" % user)
                return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}',
                                  {"Content-Type": "application/json"})
            account = user
            granted_all = known[user][2].split("+")
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue
            name, wanted = parts[1], parts[2].split(",")
            if account is not None:
                allowed = [w for w in wanted if w in granted_all]
            else:
                allowed = [w for w in wanted if w == "pull" and not name.startswith("private/")]
            access.append({"type": "repository", "name": name, "actions": allowed})
        now = int(time.time())
        claims = {"iss": a.issuer, "sub": account or "", "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": b64url(os.urandom(12)), "access": access}
        with open(a.sign_cert) as f:
            pem = f.read()
        der = base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l))
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.sign_key], input=signing,
                             stdout=subprocess.PIPE, check=True).stdout
        token = signing.decode() + "." + b64url(sig)
        log(a, "GET /token auth=%s scope=%s -> 200" % ("basic user=" + account if account else "anonymous",
                                                        ",".join(q.get("scope", []))))
        self.reply(200, json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode(),
                   {"Content-Type": "application/json"})

    # ---- front ----
    def front(self):
        a = self.server.args
        m = re.fullmatch(r"/v2/(.+)/blobs/sha256:([0-9a-f]{64})", self.path)
        if m and self.command == "GET":
            log(a, "%s %s authorization=%s -> 307" % (self.command, self.path,
                                                      "present" if "Authorization" in self.headers else "absent"))
            return self.reply(307, b"", {"Location": a.cdn + "/blobs/sha256/" + m.group(2)})
        up = urllib.parse.urlparse(a.upstream)
        ctx = ssl.create_default_context(cafile=a.ca)
        conn = http.client.HTTPSConnection(up.hostname, up.port, context=ctx, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
        conn.request(self.command, self.path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        keep = {k: v for k, v in r.getheaders()
                if k.lower() in ("www-authenticate", "content-type", "docker-content-digest",
                                 "docker-distribution-api-version")}
        log(a, "%s %s -> %d" % (self.command, self.path, r.status))
        self.reply(r.status, body, keep)

    # ---- cdn ----
    def cdn(self):
        a = self.server.args
        m = re.fullmatch(r"/blobs/sha256/([0-9a-f]{64})", self.path)
        if "Authorization" in self.headers:
            log(a, "%s %s authorization=present -> 400" % (self.command, self.path))
            return self.reply(400, b"an Authorization header reached the CDN\n")
        if not m:
            log(a, "%s %s -> 404" % (self.command, self.path))
            return self.reply(404)
        h = m.group(1)
        path = os.path.join(a.storage, "docker/registry/v2/blobs/sha256", h[:2], h, "data")
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError:
            log(a, "%s %s -> 404" % (self.command, self.path))
            return self.reply(404)
        log(a, "%s %s authorization=absent -> 200" % (self.command, self.path))
        self.reply(200, body, {"Content-Type": "application/octet-stream"})

    def do_GET(self):
        getattr(self, self.server.args.mode)()

    do_HEAD = do_GET


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["token", "front", "cdn"])
    p.add_argument("--listen", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--issuer", default="banger-test-issuer")
    p.add_argument("--sign-key")
    p.add_argument("--sign-cert")
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--upstream")
    p.add_argument("--cdn")
    p.add_argument("--ca")
    p.add_argument("--storage")
    args = p.parse_args()

    server = http.server.ThreadingHTTPServer((args.listen, 0), Handler)
    server.daemon_threads = True
    server.args = args
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
