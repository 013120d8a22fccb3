"""Bottle on gunicorn, one of the real routers of rca-tools' differential test.

Pinned (requirements.txt): Bottle 0.13.5 (the routing), gunicorn 27.0.1 (the
HTTP/1.1 parser and the WSGI environ). Bottle reads PATH_INFO back into UTF-8
with `errors="ignore"`, so bytes that are not UTF-8 vanish from the path it
routes on: `/api/crawl%ff` is `/api/crawl` to it.

Run from this folder:
    PORT=8008 PYTHONDONTWRITEBYTECODE=1 <dir>/venv/bin/gunicorn -w 1 -b 127.0.0.1:$PORT bottle_app:app

Every request gets 200 and text lines:
    handler=bots|public|none
    router=bottle
    path=<the path Bottle routed on>
Characters below 0x20, 0x7f and the backslash are written as \\xNN.
"""

import bottle

ROUTER = "bottle"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

app = bottle.Bottle()


def _esc(value):
    return "".join(
        f"\\x{ord(c):02x}" if ord(c) < 0x20 or c in "\x7f\\" else c for c in value
    )


def _reply(handler):
    bottle.response.content_type = "text/plain; charset=utf-8"
    return f"handler={handler}\nrouter={ROUTER}\npath={_esc(bottle.request.path)}\n"


@app.route("/api/crawl", method=METHODS)
@app.route("/api/crawl/", method=METHODS)
@app.route("/api/crawl/<rest:path>", method=METHODS)
def bots(rest=None):
    return _reply("bots")


@app.route("/", method=METHODS)
@app.route("/<rest:path>", method=METHODS)
def public(rest=None):
    return _reply("public")


def _none(error):
    bottle.response.status = 200
    return _reply("none")


for code in (400, 404, 405):
    app.error(code)(_none)
