"""CherryPy on its own server (cheroot), one of the real routers of
rca-tools' differential test.

Pinned (requirements.txt): CherryPy 18.10.0 with cheroot 11.1.2. Its default
dispatcher finds a handler by attribute, each path segment with every ASCII
punctuation character read as `_`: `/api/v2-crawl`, `/api/v2.crawl` and
`/api/v2;crawl` reach `api.v2_crawl`. So it has two bots-only handlers,
`/api/crawl` and `/api/v2_crawl` (the test's proxy protects both).

Run from this folder:
    PORT=8010 PYTHONDONTWRITEBYTECODE=1 <dir>/venv/bin/python cherrypy_app.py

Every request gets 200 and text lines:
    handler=bots|public|none
    router=cherrypy
    path=<the path CherryPy dispatched>
Characters below 0x20, 0x7f and the backslash are written as \\xNN.
"""

import os

import cherrypy

ROUTER = "cherrypy"


def _esc(value):
    return "".join(
        f"\\x{ord(c):02x}" if ord(c) < 0x20 or c in "\x7f\\" else c for c in value
    )


def _reply(handler):
    cherrypy.response.headers["Content-Type"] = "text/plain; charset=utf-8"
    return f"handler={handler}\nrouter={ROUTER}\npath={_esc(cherrypy.request.path_info)}\n"


def _handlers(handler, **children):
    """An object CherryPy dispatches to: `index` and `default` answer as
    `handler`, and each of `children` is the object for that segment."""

    @cherrypy.expose
    def answer(self, *args, **kwargs):
        return _reply(handler)

    return type(handler, (), {"index": answer, "default": answer, **children})()


def root():
    """api.crawl and api.v2_crawl are the bots-only handlers; the rest is
    public."""
    return _handlers(
        "public",
        api=_handlers("public", crawl=_handlers("bots"), v2_crawl=_handlers("bots")),
    )


def _none(status, message, traceback, version):
    # No handler ran (404, 400, ...): a 200 that says so.
    cherrypy.response.status = 200
    return _reply("none")


if __name__ == "__main__":
    cherrypy.config.update(
        {
            "server.socket_host": "127.0.0.1",
            "server.socket_port": int(os.environ["PORT"]),
            "engine.autoreload.on": False,
            "log.screen": False,
            "checker.on": False,
            "error_page.default": _none,
        }
    )
    # No redirect to add or drop a trailing slash instead of a dispatch.
    cherrypy.quickstart(root(), "/", {"/": {"tools.trailing_slash.on": False}})
