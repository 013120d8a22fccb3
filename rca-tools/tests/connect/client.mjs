// A bot in Node: one request through rca-connect with undici's fetch and
// EnvHttpProxyAgent (the proxy from HTTPS_PROXY, the local CA from
// NODE_EXTRA_CA_CERTS), as a bot author would set them.
//
// usage: node client.mjs URL
// Prints one JSON object: status, headers, body.
import { fetch, EnvHttpProxyAgent } from "undici";

// EnvHttpProxyAgent honours NO_PROXY but, unlike Go, proxies localhost.
const response = await fetch(process.argv[2], { dispatcher: new EnvHttpProxyAgent() });
const body = await response.text();
console.log(JSON.stringify({
  status: response.status,
  headers: Object.fromEntries(response.headers),
  body,
}));
