"""A bot in Python: one request through rca-connect with requests (HTTP/1.1).

usage: client.py URL [UPLOAD_BYTES]
The proxy comes from HTTPS_PROXY, the local CA from REQUESTS_CA_BUNDLE, as a
bot author would set them. Prints one JSON object: status, headers, body (the
first 4 KiB) and the number of body bytes.
"""
import json
import sys

import requests


def upload(size):
    chunk = b"u" * 65536
    sent = 0
    while sent < size:
        part = chunk[: min(len(chunk), size - sent)]
        sent += len(part)
        yield part


url = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 0
if size:
    response = requests.post(url, data=upload(size), stream=True, timeout=60)
else:
    response = requests.get(url, stream=True, timeout=60)
length = 0
head = b""
for part in response.iter_content(65536):
    length += len(part)
    if len(head) < 4096:
        head += part[: 4096 - len(head)]
print(json.dumps({
    "status": response.status_code,
    "headers": {name.lower(): value for name, value in response.headers.items()},
    "body": head.decode("utf-8", "replace"),
    "length": length,
}))
