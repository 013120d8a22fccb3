// Plain Node `http` + the WHATWG URL parser, one of the real routers of
// rca-tools' differential test: routing as much hand-written Node code does it.
// Node's own http parser (llhttp) reads the request; no package is needed.
//
// Run (any folder):
//   PORT=8004 node node_url_app.js
//
// Every request gets 200 and text lines:
//   handler=bots|public
//   router=node-url
//   path=<url.pathname, or <invalid> when `new URL` throws>
// Characters below 0x20, 0x7f and the backslash in the path are written as
// \xNN, so it stays on its line.
'use strict';

const http = require('node:http');

const ROUTER = 'node-url';
const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('node_url_app.js: set PORT');
  process.exit(2);
}

const esc = (s) =>
  s.replace(/[\x00-\x1f\x7f\\]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));

const server = http.createServer((req, res) => {
  let handler = 'public';
  let path;
  try {
    const url = new URL(req.url, 'http://' + (req.headers.host || 'localhost'));
    path = esc(url.pathname);
    if (url.pathname === '/api/crawl' || url.pathname.startsWith('/api/crawl/')) {
      handler = 'bots';
    }
  } catch {
    path = '<invalid>';
  }
  const body = `handler=${handler}\nrouter=${ROUTER}\npath=${path}\n`;
  res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
});

server.listen(port, '127.0.0.1', () => {
  console.error(`node_url_app.js: listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
