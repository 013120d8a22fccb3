"""A bot in Python with Scrapy: one request through rca-connect, as the
guide's recipe makes it (the proxy from `https_proxy`, which Scrapy's
HttpProxyMiddleware reads; Scrapy verifies no server certificate, so it needs
no CA; rca-connect still verifies the real server).

usage: scrapy_client.py URL
Prints one JSON object: status, headers, body (the first 4 KiB) and the
number of body bytes; non-2xx answers too (handle_httpstatus_all).
"""
import json
import os
import sys

from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess

URL = sys.argv[1]
result = {}


class Bot(Spider):
    name = "bot"

    async def start(self):
        yield Request(URL, meta={"handle_httpstatus_all": True}, dont_filter=True)

    def parse(self, response):
        result.update(
            status=response.status,
            headers={
                name.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
                for name, values in response.headers.items()
            },
            body=response.body[:4096].decode("utf-8", "replace"),
            length=len(response.body),
        )


process = CrawlerProcess(settings={
    "LOG_ENABLED": bool(os.environ.get("SCRAPY_LOG")),
    "ROBOTSTXT_OBEY": False,
    "RETRY_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    "DOWNLOAD_TIMEOUT": 60,
})
process.crawl(Bot)
process.start()
if not result:
    sys.exit("scrapy_client.py: no response")
print(json.dumps(result))
