#!/usr/bin/python3
# A CGI script under Apache (../apache/httpd.conf.template): it routes on
# PATH_INFO, the rest of the path after /app.py.
import os
import re

path = os.environ.get("PATH_INFO", "") or "/"
handler = "bots" if re.match(r"^/api/crawl(/.*)?$", path, re.S) else "public"
print("Content-Type: text/plain\r\n\r", end="\n")
print(f"handler={handler}\nrouter=apache-cgi\npath={path!r}")
