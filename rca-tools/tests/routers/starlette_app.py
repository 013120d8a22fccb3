"""Starlette on uvicorn, one of the real routers of rca-tools' differential test.

Pinned (requirements.txt): Starlette 1.10.0 (the routing), uvicorn 0.55.0
with h11 0.16.0 (the HTTP/1.1 parser; httptools is not installed, so
uvicorn's `--http auto` is h11).

Run from this folder:
    PORT=8002 PYTHONDONTWRITEBYTECODE=1 <dir>/venv/bin/uvicorn starlette_app:app --host 127.0.0.1 --port $PORT

Every request gets 200 and text lines:
    handler=bots|public|none
    router=starlette
    path=<scope["path"]: the percent-decoded path Starlette routes on>
and, for handler=none only (no route ran: 404/405), a last line
`routing_error=<code> <detail>`. Characters below 0x20, 0x7f and the
backslash in the path are written as \\xNN, so it stays on its line.
"""

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

ROUTER = "starlette"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _esc(value):
    return "".join(
        f"\\x{ord(c):02x}" if ord(c) < 0x20 or c in "\x7f\\" else c for c in value
    )


def _reply(request, handler, error=None):
    lines = [
        f"handler={handler}",
        f"router={ROUTER}",
        f"path={_esc(request.scope['path'])}",
    ]
    if error is not None:
        lines.append(f"routing_error={error.status_code} {error.detail}")
    return PlainTextResponse("\n".join(lines) + "\n", status_code=200)


async def bots(request):
    return _reply(request, "bots")


async def public(request):
    return _reply(request, "public")


async def no_route(request, exc):
    return _reply(request, "none", exc)


app = Starlette(
    routes=[
        Route("/api/crawl", bots, methods=METHODS),
        Mount("/api/crawl", routes=[Route("/{rest:path}", bots, methods=METHODS)]),
        Route("/", public, methods=METHODS),
        Route("/{rest:path}", public, methods=METHODS),
    ],
    exception_handlers={404: no_route, 405: no_route},
)
# Starlette redirects (307) a path that matched no route to the same path
# with/without a trailing slash when that one would match. The catch-all
# means it never applies here; off all the same, so a redirect can never
# stand in for a dispatch.
app.router.redirect_slashes = False
