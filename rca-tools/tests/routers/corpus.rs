//! The corpus: spellings of the protected path `/api/crawl` made from
//! categories of trick (dot segments plain and encoded, encoded `/` and `\`,
//! backslashes, `;parameters`, control characters raw-encoded, empty
//! segments, case, encoded unreserved characters, query and fragment
//! markers, double encoding, overlong UTF-8, raw characters that are not
//! ASCII, absolute form) placed before,
//! inside and after the prefix, in every pairing of two places and in
//! seeded random triples; and headers that re-route a request upstream.
//! Then the clients that send it through the proxy: raw HTTP/1.1 over
//! keep-alive TLS connections, and HTTP/2.

use std::collections::BTreeSet;
use std::fmt;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{h2_connect, tls_connect, Bytes, TestPki};
use crate::Outcome;

/// One request of the corpus: a target and the extra header lines.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Probe {
    pub(crate) target: String,
    pub(crate) headers: &'static [(&'static str, &'static str)],
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)?;
        for (name, value) in self.headers {
            write!(f, " [{name}: {value}]")?;
        }
        Ok(())
    }
}

/// What comes before `/api`: a detour that comes back (or does not).
const BEFORE: &[&str] = &[
    "",
    "/x/..",
    "/x/../",
    "/./",
    "/.",
    "//",
    "///",
    "/%2e",
    "/%2e%2e",
    "/.%2e",
    "/%2E%2E",
    "/x/%2e%2e",
    "/x/.%2E",
    "/x%2f..",
    "/x%2F%2e%2e",
    "/x\\..",
    "/x%5c..",
    "/\\",
    "/%5c",
    "/%2f",
    "/;x",
    "/..;",
    "/x/..;",
    "/x;/..",
    "/x;y/../",
    "//evil.example",
    "/%2fevil.example",
    "/\\evil.example",
    "/%0a",
    "/%00/..",
    "/x",
    "/X/..",
    "/x/..%00",
    "/x/..%2f",
    "/x/%2e%2e%2f",
    "/%252e%252e",
    "/x/%252e%252e",
    "/x/%c0%ae%c0%ae",
    "/..",
    "/../..",
    "/index.php",
    "/INDEX.PHP",
    "/blog/index.php",
    "/index.php%2f",
    "/index.php/.",
    "/app.cgi",
    "/site.wsgi",
    "/app.py",
    "/x/../site.wsgi",
    "/%25%32%65%25%32%65",
    "/x/%25%32%65%25%32%65",
    "/x/%252%65%252%65",
    "/%ff",
    "/%c0%af",
    // Raw bytes that are not ASCII, which the proxy escapes.
    "/caf\u{e9}/..",
    "/\u{e9}",
];

/// Spellings of the segment `api`.
const API: &[&str] = &[
    "ap%C4%B1",
    "AP%C4%B0",
    "api",
    "API",
    "Api",
    "%61pi",
    "%41PI",
    "ap%69",
    "api;x",
    "api;",
    "api%3b",
    "%25%36%31pi",
    "ap%ff%69",
    // Raw: dotless and dotted I, and a fullwidth `a` (which a router that
    // folds Unicode compatibility forms, NFKC, reads as `a`).
    "ap\u{131}",
    "AP\u{130}",
    "\u{ff41}pi",
];

/// What separates `api` from `crawl`.
const SEPARATOR: &[&str] = &[
    "/",
    "//",
    "/./",
    "/%2e/",
    "/x/../",
    "/x/%2e%2e/",
    "%2f",
    "%2F",
    "\\",
    "%5c",
    "%5C",
    "/;/",
    ";x/",
    "/;x/",
    "/.;/",
    "/..;/api/",
    "%2f%2e%2f",
    "/%09/",
    "/%0a/",
    "/crawl/../",
    "/%2e%2e/api/",
    "%252f",
    "%25%32%66",
    "%252%66",
    "%25%32f",
    "%c0%af",
    "/%80/",
    // Raw fullwidth solidus and division slash.
    "\u{ff0f}",
    "\u{2215}",
];

/// Spellings of the segment `crawl`.
const CRAWL: &[&str] = &[
    "crawl", "CRAWL", "Crawl", "%63rawl", "cr%61wl", "%43RAWL", "crawl;x", "crawl;",
];

/// What comes after `crawl`.
const AFTER: &[&str] = &[
    "",
    "/",
    "//",
    "/x",
    "/x/",
    "/.",
    "/./",
    "/..",
    "/../",
    "/../crawl",
    "/..;",
    "/..;/",
    "/..;/x",
    ";",
    ";x",
    ";x/..",
    "/;x",
    "%0a",
    "%0A",
    "%0d%0a",
    "%0d",
    "%00",
    "%09",
    "%7f",
    "%20",
    "%20/..",
    ".",
    "..",
    "%2e",
    "%2e%2e",
    "/%2e",
    "/%2e%2e",
    "/.%2e",
    "/%2e%2e/",
    "%2f",
    "%2f..",
    "%2F%2e%2e",
    "%5c",
    "%5c..",
    "\\",
    "\\..",
    "?",
    "?x",
    "?/../",
    "?%0a",
    "#",
    "#x",
    "#/../",
    "%3f",
    "%3f/..",
    "%23",
    "%23/..",
    "%3b",
    "%3b/..",
    "%252e%252e",
    "%252f..",
    "~",
    "%7e",
    "x",
    "er",
    "%ff",
    "%c0%ae%c0%ae",
    "/x/../..",
    "/x/..",
    "/%2e%2e%2f",
    "/./..",
    "/...",
    "/.%20",
    "%",
    "%2",
    "%zz",
    "/%",
    "%u002e",
    ".json",
    "%2ejson",
    "%2Exml/x",
    "%25%32%65%25%32%65",
    "%25%32%66..",
    "%80",
    "%ed%a0%80",
    "%e0%80%af",
    "/x%fe",
    "\u{e9}",
    "/\u{e9}",
    "?\u{e9}",
    "\u{301}",
];

/// Headers that servers or middlewares read to re-route a request, with
/// targets they would re-route to `/api/crawl`.
const ROUTING_HEADERS: &[&[(&str, &str)]] = &[
    &[("SCRIPT_NAME", "/x")],
    &[("script_name", "/x")],
    &[("Script-Name", "/x")],
    &[("PATH_INFO", "/api/crawl")],
    &[("X-Script-Name", "/x")],
    &[("X-Forwarded-Prefix", "/x")],
    &[("X-Original-URL", "/api/crawl")],
    &[("X-Rewrite-URL", "/api/crawl")],
    &[("X-Original-URI", "/api/crawl")],
    &[("SCRIPT_NAME", "/x"), ("SCRIPT_NAME", "/x")],
];
const REROUTED: &[&str] = &[
    "/x/api/crawl",
    "/xapi/crawl",
    "/x%2fapi/crawl",
    "/x/api/crawl/..",
    "/",
];

/// Absolute-form targets (HTTP/1.1 only: HTTP/2 has `:authority`).
const ABSOLUTE: &[&str] = &[
    "http://localhost/api/crawl",
    "http://localhost/api/crawl/..",
    "http://evil.example/api/crawl",
    "HTTP://LOCALHOST/api/crawl",
    "https://localhost/api/crawl",
    "http://localhost:1/api/crawl",
    "http://user@localhost/api/crawl",
    "http://localhost//api/crawl",
];

/// The second protected prefix, with punctuation in it: `CherryPy` reads
/// every ASCII punctuation character of a segment as `_`.
pub(crate) const PUNCTUATED_PREFIX: &str = "/api/v2_crawl";

/// Spellings of [`PUNCTUATED_PREFIX`]: every ASCII punctuation character in
/// place of its `_`, raw where a target may hold it and percent-encoded, in
/// two letter cases, alone and with something after it.
fn punctuated() -> impl Iterator<Item = Probe> {
    (b'!'..=b'~')
        .filter(u8::is_ascii_punctuation)
        .flat_map(|symbol| {
            let raw = (symbol != b'#' && symbol != b'?' && symbol != b'%')
                .then(|| char::from(symbol).to_string());
            [
                raw,
                Some(format!("%{symbol:02X}")),
                Some(format!("%{symbol:02x}")),
            ]
        })
        .flatten()
        .flat_map(|symbol| {
            ["v2", "V2"].into_iter().flat_map(move |version| {
                let symbol = symbol.clone();
                ["", "/", "/x", ".json"]
                    .into_iter()
                    .map(move |after| Probe {
                        target: format!("/api/{version}{symbol}crawl{after}"),
                        headers: &[],
                    })
            })
        })
}

fn spelled(before: &str, api: &str, separator: &str, crawl: &str, after: &str) -> Probe {
    Probe {
        target: format!("{before}/{api}{separator}{crawl}{after}"),
        headers: &[],
    }
}

/// The whole corpus, without repeats, in a fixed order.
pub(crate) fn targets() -> Vec<Probe> {
    let mut corpus = BTreeSet::new();
    for before in BEFORE {
        for after in AFTER {
            corpus.insert(spelled(before, "api", "/", "crawl", after));
        }
        for separator in SEPARATOR {
            corpus.insert(spelled(before, "api", separator, "crawl", ""));
        }
    }
    for separator in SEPARATOR {
        for after in AFTER {
            corpus.insert(spelled("", "api", separator, "crawl", after));
        }
    }
    for api in API {
        for separator in SEPARATOR {
            for crawl in CRAWL {
                corpus.insert(spelled("", api, separator, crawl, ""));
            }
        }
    }
    for crawl in CRAWL {
        for after in AFTER {
            corpus.insert(spelled("", "api", "/", crawl, after));
        }
    }
    // Seeded random picks from every place at once (xorshift: the same
    // corpus on every run).
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut pick = |len: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % u64::try_from(len).unwrap_or(1)).unwrap_or(0)
    };
    for _ in 0..1500 {
        let probe = spelled(
            BEFORE[pick(BEFORE.len())],
            API[pick(API.len())],
            SEPARATOR[pick(SEPARATOR.len())],
            CRAWL[pick(CRAWL.len())],
            AFTER[pick(AFTER.len())],
        );
        corpus.insert(probe);
    }
    for headers in ROUTING_HEADERS {
        for target in REROUTED {
            corpus.insert(Probe {
                target: (*target).to_owned(),
                headers,
            });
        }
    }
    corpus.extend(punctuated());
    for target in ABSOLUTE {
        corpus.insert(Probe {
            target: (*target).to_owned(),
            headers: &[],
        });
    }
    corpus.into_iter().collect()
}

/// Connections used at once by each sender.
const CONNECTIONS: usize = 4;

/// Sends every probe over raw HTTP/1.1 (keep-alive, reconnecting when the
/// proxy closes) as a client without a certificate; the outcomes in the
/// corpus's order.
pub(crate) async fn send_http1(pki: &'static TestPki, port: u16, corpus: &[Probe]) -> Vec<Outcome> {
    let chunk = corpus.len().div_ceil(CONNECTIONS);
    let workers: Vec<_> = corpus
        .chunks(chunk)
        .map(|probes| {
            let probes = probes.to_vec();
            tokio::spawn(async move {
                let mut connection = None;
                let mut outcomes = Vec::with_capacity(probes.len());
                for probe in &probes {
                    let mut request =
                        format!("GET {} HTTP/1.1\r\nHost: localhost\r\n", probe.target);
                    for (name, value) in probe.headers {
                        request.push_str(name);
                        request.push_str(": ");
                        request.push_str(value);
                        request.push_str("\r\n");
                    }
                    request.push_str("\r\n");
                    outcomes
                        .push(exchange_http1(pki, port, &mut connection, request.as_bytes()).await);
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(corpus.len());
    for worker in workers {
        outcomes.extend(worker.await.expect("HTTP/1.1 sender"));
    }
    outcomes
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// One request on `connection` (opened if there is none; left `None` when
/// the response closes it).
async fn exchange_http1(
    pki: &TestPki,
    port: u16,
    connection: &mut Option<Tls>,
    request: &[u8],
) -> Outcome {
    let tls = match connection {
        Some(tls) => tls,
        None => connection.insert(tls_connect(pki, port, b"http/1.1").await),
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        tls.write_all(request).await?;
        read_response(tls).await
    })
    .await;
    if let Ok(Ok((status, body, keep))) = answer {
        if !keep {
            *connection = None;
        }
        Outcome::of(status, &body)
    } else {
        *connection = None;
        Outcome::Failed
    }
}

/// The next response on `tls`: its status, its body as text, and whether
/// the connection stays open. Bodies are framed by `Content-Length`, chunked
/// or the connection's end.
async fn read_response(tls: &mut Tls) -> std::io::Result<(u16, String, bool)> {
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    let (status, head_len, length, chunked, mut keep) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = response.parse(&buf) {
            let field = |name: &str| {
                response
                    .headers
                    .iter()
                    .find(|field| field.name.eq_ignore_ascii_case(name))
                    .map(|field| String::from_utf8_lossy(field.value).to_ascii_lowercase())
            };
            let length = field("content-length").and_then(|length| length.parse::<usize>().ok());
            let chunked =
                field("transfer-encoding").is_some_and(|coding| coding.contains("chunked"));
            let keep = !field("connection").is_some_and(|option| option.contains("close"));
            break (
                response.code.unwrap_or_default(),
                head_len,
                length,
                chunked,
                keep,
            );
        }
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut body = buf.split_off(head_len);
    let complete = |body: &[u8]| match (length, chunked) {
        (Some(length), false) => body.len() >= length,
        (_, true) => body.ends_with(b"0\r\n\r\n"),
        (None, false) => false,
    };
    while !complete(&body) {
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            keep = false;
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if chunked {
        // The first chunk holds the router's first line.
        body = body
            .splitn(2, |&byte| byte == b'\n')
            .nth(1)
            .unwrap_or_default()
            .to_vec();
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned(), keep))
}

/// Sends every probe over HTTP/2 as a client without a certificate; a
/// target HTTP/2 cannot carry as `:path` (an absolute form, bytes `http`
/// refuses in a URI) is [`Outcome::Status`] 0.
pub(crate) async fn send_http2(pki: &'static TestPki, port: u16, corpus: &[Probe]) -> Vec<Outcome> {
    let (sender, _connection) = h2_connect(pki, port).await;
    let chunk = corpus.len().div_ceil(CONNECTIONS);
    let workers: Vec<_> = corpus
        .chunks(chunk)
        .map(|probes| {
            let probes = probes.to_vec();
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::with_capacity(probes.len());
                for probe in &probes {
                    let Some(request) = http2_request(port, probe) else {
                        outcomes.push(Outcome::Status(0));
                        continue;
                    };
                    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                        let response = sender.send_request(request).await.ok()?;
                        let status = response.status().as_u16();
                        let body = http_body_util::BodyExt::collect(response.into_body())
                            .await
                            .ok()?
                            .to_bytes();
                        Some(Outcome::of(status, &String::from_utf8_lossy(&body)))
                    })
                    .await;
                    outcomes.push(answer.ok().flatten().unwrap_or(Outcome::Failed));
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(corpus.len());
    for worker in workers {
        outcomes.extend(worker.await.expect("HTTP/2 sender"));
    }
    outcomes
}

fn http2_request(port: u16, probe: &Probe) -> Option<hyper::Request<http_body_util::Empty<Bytes>>> {
    if !probe.target.starts_with('/') {
        return None;
    }
    let uri: hyper::Uri = format!("https://localhost:{port}{}", probe.target)
        .parse()
        .ok()?;
    let mut request = hyper::Request::get(uri);
    for (name, value) in probe.headers {
        request = request.header(name.to_ascii_lowercase(), *value);
    }
    request.body(http_body_util::Empty::new()).ok()
}
