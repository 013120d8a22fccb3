"""A bot in Python: one request through rca-connect, with requests or httpx
(both HTTP/1.1).

usage: client.py [--httpx] URL [UPLOAD_BYTES]
The proxy comes from HTTPS_PROXY, the local CA from REQUESTS_CA_BUNDLE:
requests reads both from the environment, as a bot author would set them;
the httpx client is given them as the guide's recipe does
(`httpx.Client(proxy=..., verify=ssl.create_default_context(cafile=CA))`). Prints one JSON object: status,
headers, body (the first 4 KiB) and the number of body bytes.
"""
import json
import os
import sys


def upload(size):
    chunk = b"u" * 65536
    sent = 0
    while sent < size:
        part = chunk[: min(len(chunk), size - sent)]
        sent += len(part)
        yield part


def with_requests(url, size):
    import requests

    if size:
        response = requests.post(url, data=upload(size), stream=True, timeout=60)
    else:
        response = requests.get(url, stream=True, timeout=60)
    return response.status_code, response.headers.items(), response.iter_content(65536)


def with_httpx(url, size):
    import ssl

    import httpx

    client = httpx.Client(
        proxy=os.environ["HTTPS_PROXY"],
        verify=ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"]),
        timeout=60,
    )
    if size:
        request = client.build_request("POST", url, content=upload(size))
    else:
        request = client.build_request("GET", url)
    response = client.send(request, stream=True)
    return response.status_code, response.headers.items(), response.iter_bytes(65536)


arguments = sys.argv[1:]
use_httpx = arguments[:1] == ["--httpx"]
if use_httpx:
    arguments = arguments[1:]
url = arguments[0]
size = int(arguments[1]) if len(arguments) > 1 else 0
status, headers, parts = (with_httpx if use_httpx else with_requests)(url, size)
length = 0
head = b""
for part in parts:
    length += len(part)
    if len(head) < 4096:
        head += part[: 4096 - len(head)]
print(json.dumps({
    "status": status,
    "headers": {name.lower(): value for name, value in headers},
    "body": head.decode("utf-8", "replace"),
    "length": length,
}))
