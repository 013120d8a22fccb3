# A WSGI app under mod_wsgi (../apache/httpd.conf.template): it routes on
# PATH_INFO, the rest of the path after /site.wsgi, as Flask would there.
import re


def application(environ, start_response):
    path = environ.get("PATH_INFO", "") or "/"
    handler = "bots" if re.match(r"^/api/crawl(/.*)?$", path, re.S) else "public"
    body = f"handler={handler}\nrouter=apache-wsgi\npath={path!r}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
