"""Flask behind gunicorn, one of the real routers of rca-tools' differential test.

Pinned (requirements.txt): Flask 3.1.3, Werkzeug 3.1.9 (the routing), gunicorn
27.0.1 (the HTTP/1.1 parser and the WSGI environ).

Run from this folder:
    PORT=8001 PYTHONDONTWRITEBYTECODE=1 <dir>/venv/bin/gunicorn -w 1 -b 127.0.0.1:$PORT flask_app:app

gunicorn keeps its defaults: forwarded_allow_ips is "127.0.0.1,::1" and
forwarder_headers is "SCRIPT_NAME,PATH_INFO", so a `SCRIPT_NAME` (or
`PATH_INFO`) request header from 127.0.0.1 goes into the environ and
PATH_INFO is the request path with that prefix cut off. That is the behaviour
under test: a proxy on 127.0.0.1 must not let a client's such header through.

Every request gets 200 and text lines:
    handler=bots|public|none
    router=flask
    path=<request.path: "/" + PATH_INFO without its leading slashes, what Werkzeug routes on>
    path_info=<environ PATH_INFO>
    script_name=<environ SCRIPT_NAME>
    remote_user=<environ REMOTE_USER or empty>
and, for handler=none only (Werkzeug routed to no view: 404/405), a last
line `routing_error=<code> <name>`. Characters below 0x20, 0x7f and the
backslash in values are written as \\xNN, so each value stays on its line.
"""

from flask import Flask, request
from werkzeug.exceptions import HTTPException

ROUTER = "flask"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

app = Flask(__name__)
# No redirect instead of a dispatch. Werkzeug answers 308 when a path matches
# no rule as sent but does with a trailing slash added (strict_slashes) or
# with repeated slashes merged (merge_slashes). With the catch-all below that
# hardly happens (no probe so far got one with the defaults either); these
# make sure. Set before the rules are added: a rule takes the map's value
# when it is bound.
app.url_map.strict_slashes = False
app.url_map.merge_slashes = False


def _esc(value):
    return "".join(
        f"\\x{ord(c):02x}" if ord(c) < 0x20 or c in "\x7f\\" else c for c in value
    )


def _reply(handler, error=None):
    env = request.environ
    lines = [
        f"handler={handler}",
        f"router={ROUTER}",
        f"path={_esc(request.path)}",
        f"path_info={_esc(env.get('PATH_INFO', ''))}",
        f"script_name={_esc(env.get('SCRIPT_NAME', ''))}",
        f"remote_user={_esc(env.get('REMOTE_USER') or '')}",
    ]
    if error is not None:
        lines.append(f"routing_error={error.code} {error.name}")
    return "\n".join(lines) + "\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.route("/api/crawl", methods=METHODS, strict_slashes=False)
@app.route("/api/crawl/", methods=METHODS, strict_slashes=False)
@app.route("/api/crawl/<path:rest>", methods=METHODS)
def bots(rest=None):
    return _reply("bots")


@app.route("/", methods=METHODS)
@app.route("/<path:rest>", methods=METHODS)
def public(rest=None):
    return _reply("public")


@app.errorhandler(HTTPException)
def no_view(error):
    # 404 (no rule matched) or 405 (a method outside METHODS): neither view ran.
    return _reply("none", error)
