// express 5, one of the real routers of rca-tools' differential test.
//
// Pinned (package-lock.json): express 5.3.0, router 2.3.0, path-to-regexp
// 8.4.2. Node's own http parser (llhttp) reads the request.
//
// Run (any folder; express is found through NODE_PATH):
//   PORT=8003 NODE_PATH=<dir>/node/node_modules node express_app.js
//
// Every request gets 200 and text lines:
//   handler=bots|public|none
//   router=express
//   path=<req.originalUrl up to the first "?">
// and, for handler=none only (an error in routing, e.g. a parameter that
// does not percent-decode), a last line `routing_error=<status> <message>`.
// Characters below 0x20, 0x7f and the backslash in the path are written as
// \xNN, so it stays on its line.
'use strict';

const express = require('express');

const ROUTER = 'express';
const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('express_app.js: set PORT');
  process.exit(2);
}

const esc = (s) =>
  s.replace(/[\x00-\x1f\x7f\\]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));

function reply(req, res, handler, err) {
  const url = req.originalUrl || req.url || '';
  const q = url.indexOf('?');
  let body = `handler=${handler}\nrouter=${ROUTER}\npath=${esc(q < 0 ? url : url.slice(0, q))}\n`;
  if (err) {
    const status = err.status || err.statusCode || 500;
    body += `routing_error=${status} ${esc(String(err.message)).replace(/\n/g, ' ')}\n`;
  }
  res.status(200).type('text/plain').send(body);
}

const app = express(); // defaults: case-insensitive, non-strict routing

// `/api/crawl` and everything under it (a mount is segment-bounded).
const bots = express.Router();
bots.all('/{*rest}', (req, res) => reply(req, res, 'bots'));
app.use('/api/crawl', bots);

app.all('/{*rest}', (req, res) => reply(req, res, 'public'));
// A request-target the pattern above does not match (none known): no handler.
app.use((req, res) => reply(req, res, 'none', { status: 404, message: 'no route' }));
// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => reply(req, res, 'none', err));

const server = app.listen(port, '127.0.0.1', (err) => {
  if (err) {
    console.error(`express_app.js: ${err.message}`);
    process.exit(1);
  }
  console.error(`express_app.js: listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
