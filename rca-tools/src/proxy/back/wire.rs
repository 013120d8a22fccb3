//! The HTTP/1.1 messages exchanged with the upstream, without I/O: the
//! request head the proxy writes, the response head it parses (httparse),
//! and where the response body ends (RFC 9112 section 6.3).
//!
//! The upstream is trusted to serve, not to frame: a response whose length
//! is ambiguous (both `Transfer-Encoding` and `Content-Length`, differing
//! lengths, a bad chunk) is an error, never a guess, because a connection
//! that is read out of step would hand one client's response to the next.

use crate::common::fields::{list_has_token, list_tokens};
use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

/// The most response headers taken (hyper's limit too).
pub const MAX_HEADERS: usize = 100;

/// The longest response head (status line and headers) and the longest
/// trailer section taken.
pub const MAX_HEAD: usize = 64 * 1024;

/// The longest chunk-size line (with its extensions) taken.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// The terminating chunk of a chunked request body, without trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// How a request body is delimited on the way up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body: nothing follows the head.
    Empty,
    /// `Content-Length`: exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`: a body of a length not known up front
    /// (an HTTP/2 client's stream without `content-length`, a chunked one).
    Chunked,
}

impl RequestFraming {
    /// The framing for a request to `method` whose body ends at once
    /// (`end_stream`) or has `exact` bytes if known. A POST, PUT or PATCH
    /// without a body says `Content-Length: 0` (some servers refuse one
    /// without a length, RFC 9110 section 8.6).
    #[must_use]
    pub fn of(method: &Method, end_stream: bool, exact: Option<u64>) -> Self {
        let expects_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        match (end_stream, exact) {
            (true, _) | (false, Some(0)) if expects_body => Self::Length(0),
            (true, _) | (false, Some(0)) => Self::Empty,
            (false, Some(length)) => Self::Length(length),
            (false, None) => Self::Chunked,
        }
    }
}

/// Appends the head of a request: `method target HTTP/1.1`, the headers
/// except any `Content-Length` or `Transfer-Encoding` (the framing is
/// written from `framing`, so it cannot disagree with the body sent).
///
/// Nothing needs escaping: `http` admits no CR or LF in a method, a target,
/// a header name or a value.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    write_framing(out, framing);
    out.extend_from_slice(b"\r\n");
}

/// Appends the field line that frames a body as `framing` says (none for
/// [`RequestFraming::Empty`]).
pub fn write_framing(out: &mut Vec<u8>, framing: RequestFraming) {
    match framing {
        RequestFraming::Empty => {}
        RequestFraming::Length(length) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
}

/// The line that opens a chunk of `length` bytes (`length` in hex, CRLF).
#[must_use]
pub fn chunk_line(length: usize) -> Vec<u8> {
    let mut line = format!("{length:x}").into_bytes();
    line.extend_from_slice(b"\r\n");
    line
}

/// Why the upstream's response cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// httparse refused the status line or a header.
    #[error("its response head is not HTTP/1.1: {0}")]
    Malformed(httparse::Error),
    /// More than [`MAX_HEADERS`] headers.
    #[error("its response has more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    /// A head or trailer section longer than [`MAX_HEAD`].
    #[error("its response head is longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    /// Both delimiters at once (RFC 9112 section 6.3, item 3): a sign of
    /// response splitting, handled as an error.
    #[error("its response has both Transfer-Encoding and Content-Length")]
    LengthAndEncoding,
    /// `Transfer-Encoding` in an HTTP/1.0 response (RFC 9112 section 6.1).
    #[error("its HTTP/1.0 response has a Transfer-Encoding")]
    EncodingInHttp10,
    /// A transfer coding besides `chunked` (`gzip, chunked`): the body is
    /// passed on de-chunked and framed anew, so the coding would be lost
    /// and the client would take the coded bytes for the body.
    #[error("its response has a transfer coding besides chunked, which is not passed on")]
    TransferCoding,
    /// A `Content-Length` that is not one decimal number (item 5).
    #[error("its response has an invalid Content-Length")]
    InvalidLength,
    /// A chunk-size line or a chunk's end that is not RFC 9112 section 7.1.
    #[error("its chunked response body is malformed")]
    InvalidChunk,
    /// The connection ended inside the body.
    #[error("it closed the connection before the end of the response body")]
    Truncated,
}

/// Where a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body (a response to HEAD, 204, 304, a `Content-Length: 0`).
    Empty,
    /// After this many bytes.
    Length(u64),
    /// At the last chunk and its trailers.
    Chunked,
    /// When the upstream closes the connection.
    UntilClose,
    /// 101: the connection switched protocols; what follows is not HTTP.
    Switched,
}

/// A final response's head, as the upstream sent it: the bytes, and where
/// each field's name and value are in them. The front side copies the
/// fields it passes on straight from here (see `crate::proxy::front::http1`); the
/// hyper path builds a `HeaderMap` ([`ResponseHead::header_map`]).
#[derive(Debug)]
pub struct ResponseHead {
    /// Its status (never 1xx but 101).
    pub status: StatusCode,
    /// Where its body ends.
    pub framing: ResponseFraming,
    /// The connection may carry another request after this response's body:
    /// HTTP/1.1, no `Connection: close`, a body of known end.
    pub reusable: bool,
    /// The length its `Content-Length` fields give, if they give one (also
    /// for a response to HEAD or a 304, whose body it does not frame).
    pub content_length: Option<u64>,
    /// Whether its `Transfer-Encoding` names a coding besides `chunked`
    /// (see [`WireError::TransferCoding`]).
    pub other_transfer_coding: bool,
    head: Bytes,
    fields: Vec<Field>,
}

/// Where a field's name and value are in its head.
#[derive(Clone, Debug)]
struct Field {
    name: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl ResponseHead {
    /// Its fields (hop-by-hop ones included), names as sent (httparse
    /// checked them as tokens, the values for CR, LF and NUL).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|field| {
            (
                self.head.get(field.name.clone()).unwrap_or_default(),
                self.head.get(field.value.clone()).unwrap_or_default(),
            )
        })
    }

    /// Its fields as a `HeaderMap`, the values sharing the head's bytes.
    ///
    /// # Errors
    ///
    /// A name or value `http` does not take.
    pub fn header_map(&self) -> Result<HeaderMap, WireError> {
        let mut headers = HeaderMap::with_capacity(self.fields.len());
        for field in &self.fields {
            let name = HeaderName::from_bytes(&self.head[field.name.clone()])
                .map_err(|_| WireError::Malformed(httparse::Error::HeaderName))?;
            let value = HeaderValue::from_maybe_shared(self.head.slice(field.value.clone()))
                .map_err(|_| WireError::Malformed(httparse::Error::HeaderValue))?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

/// Takes a final response head off the front of `buf`, skipping interim
/// (1xx other than 101) responses; `None` if more input is needed.
///
/// # Errors
///
/// [`WireError`]: not HTTP/1.x, too large, or framed ambiguously.
pub fn parse_response_head(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, WireError> {
    loop {
        let Some(head) = parse_one(buf, method)? else {
            return Ok(None);
        };
        if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
            continue;
        }
        return Ok(Some(head));
    }
}

/// What the headers that decide the framing said, gathered as the head is
/// read (nothing allocated).
#[derive(Default)]
struct Framing {
    /// What the `Transfer-Encoding` values said, if there were any.
    codings: Option<Codings>,
    /// The one length of all `Content-Length` values so far, or the error.
    content_length: Option<Result<u64, WireError>>,
    close: bool,
}

/// The transfer codings of a response, as far as framing it goes.
#[derive(Clone, Copy, Default)]
struct Codings {
    /// Whether the last coding of all `Transfer-Encoding` values is chunked.
    chunked_last: bool,
    /// Whether any coding is not chunked.
    other: bool,
}

impl Framing {
    fn transfer_encoding(&mut self, value: &[u8]) {
        let codings = self.codings.get_or_insert_with(Codings::default);
        codings.other |= list_tokens(value).any(|coding| !coding.eq_ignore_ascii_case(b"chunked"));
        if let Some(last) = list_tokens(value).last() {
            codings.chunked_last = last.eq_ignore_ascii_case(b"chunked");
        }
    }

    fn content_length(&mut self, value: &[u8]) {
        let so_far = match self.content_length.take() {
            None => None,
            Some(Ok(length)) => Some(length),
            Some(Err(error)) => {
                self.content_length = Some(Err(error));
                return;
            }
        };
        self.content_length = Some(content_length(so_far, value));
    }
}

fn parse_one(buf: &mut BytesMut, method: &Method) -> Result<Option<ResponseHead>, WireError> {
    // Not initialised: httparse writes the slots it uses.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    );
    let length = match parsed {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(WireError::HeadTooLong)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(WireError::TooManyHeaders),
        Err(error) => return Err(WireError::Malformed(error)),
    };
    if length > MAX_HEAD {
        return Err(WireError::HeadTooLong);
    }
    let code = response.code.unwrap_or_default();
    let status =
        StatusCode::from_u16(code).map_err(|_| WireError::Malformed(httparse::Error::Status))?;
    let http11 = response.version == Some(1);
    // Names and values are sliced out of the head once it is split off, not
    // copied: their places are taken while httparse's borrow lasts.
    let base = buf.as_ptr().addr();
    let place = |bytes: &[u8]| {
        let start = bytes.as_ptr().addr() - base;
        start..start + bytes.len()
    };
    let mut seen = Framing::default();
    let mut fields = Vec::with_capacity(response.headers.len());
    for field in response.headers.iter() {
        let name = field.name.as_bytes();
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            seen.transfer_encoding(field.value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            seen.content_length(field.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            seen.close |= list_has_token(field.value, b"close");
        }
        fields.push(Field {
            name: place(name),
            value: place(field.value),
        });
    }
    let framing = framing(status, &seen, method, http11)?;
    let reusable = http11
        && !seen.close
        && matches!(
            framing,
            ResponseFraming::Empty | ResponseFraming::Length(_) | ResponseFraming::Chunked
        );
    let head = buf.split_to(length).freeze();
    Ok(Some(ResponseHead {
        status,
        framing,
        reusable,
        content_length: seen.content_length.and_then(Result::ok),
        other_transfer_coding: seen.codings.is_some_and(|codings| codings.other),
        head,
        fields,
    }))
}

/// RFC 9112 section 6.3, in its order; ambiguity is an error.
fn framing(
    status: StatusCode,
    seen: &Framing,
    method: &Method,
    http11: bool,
) -> Result<ResponseFraming, WireError> {
    if seen.codings.is_some() && seen.content_length.is_some() {
        return Err(WireError::LengthAndEncoding);
    }
    if seen.codings.is_some() && !http11 {
        return Err(WireError::EncodingInHttp10);
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok(ResponseFraming::Switched);
    }
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(ResponseFraming::Empty);
    }
    if let Some(codings) = seen.codings {
        return Ok(if codings.chunked_last {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::UntilClose
        });
    }
    match seen.content_length.clone() {
        Some(Ok(0)) => Ok(ResponseFraming::Empty),
        Some(Ok(length)) => Ok(ResponseFraming::Length(length)),
        Some(Err(error)) => Err(error),
        None => Ok(ResponseFraming::UntilClose),
    }
}

/// The length a `Content-Length` value gives (every element of a
/// comma-separated one the same), which must be `so_far` if one was seen.
///
/// # Errors
///
/// [`WireError::InvalidLength`]: not decimal digits, or another length.
pub(crate) fn content_length(so_far: Option<u64>, value: &[u8]) -> Result<u64, WireError> {
    let mut length = so_far;
    for element in value.split(|&byte| byte == b',') {
        let element = element.trim_ascii();
        if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
            return Err(WireError::InvalidLength);
        }
        let parsed: u64 = std::str::from_utf8(element)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or(WireError::InvalidLength)?;
        if length.is_some_and(|seen| seen != parsed) {
            return Err(WireError::InvalidLength);
        }
        length = Some(parsed);
    }
    length.ok_or(WireError::InvalidLength)
}

/// Takes a chunk-size line (RFC 9112 section 7.1: hex digits, extensions,
/// CRLF) off the front of `buf`; `None` if it is not all there yet.
///
/// httparse's `parse_chunk_size` alone also takes a line without a digit
/// (as size 0, the last chunk) and a bare LF inside an extension, so a
/// stray CRLF could end a body early: the line is checked first.
fn chunk_size(buf: &mut BytesMut) -> Result<Option<u64>, WireError> {
    let Some(end) = buf.iter().position(|&byte| byte == b'\n') else {
        return if buf.len() > MAX_CHUNK_LINE {
            Err(WireError::InvalidChunk)
        } else {
            Ok(None)
        };
    };
    let line = &buf[..=end];
    let malformed = end == 0
        || end > MAX_CHUNK_LINE
        || !line[0].is_ascii_hexdigit()
        || line[end - 1] != b'\r'
        || line[..end - 1].contains(&b'\r');
    if malformed {
        return Err(WireError::InvalidChunk);
    }
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((used, size))) if used == line.len() => {
            buf.advance(used);
            Ok(Some(size))
        }
        _ => Err(WireError::InvalidChunk),
    }
}

/// What [`BodyDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// Nothing yet: read more.
    NeedMore,
    /// The body is over.
    Done,
}

/// Takes a response body off the front of a buffer, as its framing says.
#[derive(Debug)]
pub struct BodyDecoder(State);

#[derive(Debug, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkLine,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing` (a switched connection has
    /// no body).
    #[must_use]
    pub fn new(framing: ResponseFraming) -> Self {
        Self(match framing {
            ResponseFraming::Empty | ResponseFraming::Switched => State::Done,
            ResponseFraming::Length(length) => State::Length(length),
            ResponseFraming::Chunked => State::ChunkLine,
            ResponseFraming::UntilClose => State::UntilClose,
        })
    }

    /// Whether the body is over.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.0 == State::Done
    }

    /// The body's bytes still to come, if known.
    #[must_use]
    pub fn remaining(&self) -> Option<u64> {
        match self.0 {
            State::Length(length) => Some(length),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The next body bytes in `buf`, consumed from it. Trailers are
    /// discarded (RFC 9112 section 7.1.2 lets a recipient that removes the
    /// chunked coding do so).
    ///
    /// # Errors
    ///
    /// [`WireError::InvalidChunk`] or [`WireError::HeadTooLong`] (trailers).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        loop {
            match self.0 {
                State::Done | State::Length(0) => {
                    self.0 = State::Done;
                    return Ok(Decoded::Done);
                }
                State::Length(ref mut left) | State::ChunkData(ref mut left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    *left -= u64::try_from(take).unwrap_or(*left);
                    if *left == 0 && matches!(self.0, State::ChunkData(_)) {
                        self.0 = State::ChunkEnd;
                    }
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                State::ChunkLine => {
                    let Some(size) = chunk_size(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.0 = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(WireError::InvalidChunk);
                    }
                    buf.advance(2);
                    self.0 = State::ChunkLine;
                }
                State::Trailers => {
                    // Field lines and the empty line, checked as such: a
                    // stray line here must not pass for the body's end.
                    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(buf, &mut slots) {
                        Ok(httparse::Status::Complete((used, _))) => {
                            buf.advance(used);
                            self.0 = State::Done;
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                            return Err(WireError::HeadTooLong)
                        }
                        Ok(httparse::Status::Partial) => return Ok(Decoded::NeedMore),
                        Err(_) => return Err(WireError::InvalidChunk),
                    }
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
            }
        }
    }

    /// The connection ended: the end of a body delimited by the close, else
    /// a truncated one.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] unless the body was delimited by the close
    /// or is over.
    pub fn end_of_input(&mut self) -> Result<(), WireError> {
        match self.0 {
            State::UntilClose | State::Done => {
                self.0 = State::Done;
                Ok(())
            }
            _ => Err(WireError::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_framing_follows_the_body() {
        for (method, end_stream, exact, framing) in [
            (Method::GET, true, Some(0), RequestFraming::Empty),
            (Method::GET, false, Some(0), RequestFraming::Empty),
            (Method::DELETE, true, None, RequestFraming::Empty),
            (Method::POST, true, Some(0), RequestFraming::Length(0)),
            (Method::PUT, false, Some(0), RequestFraming::Length(0)),
            (Method::POST, false, Some(5), RequestFraming::Length(5)),
            (Method::GET, false, Some(5), RequestFraming::Length(5)),
            (Method::PATCH, false, None, RequestFraming::Chunked),
        ] {
            assert_eq!(
                RequestFraming::of(&method, end_stream, exact),
                framing,
                "{method} {end_stream} {exact:?}"
            );
        }
    }

    #[test]
    fn the_request_head_carries_its_own_framing_only() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.com"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.append("x-two", HeaderValue::from_static("a"));
        headers.append("x-two", HeaderValue::from_static("b"));
        for (framing, expected) in [
            (
                RequestFraming::Empty,
                "GET /a?b HTTP/1.1\r\nhost: example.com\r\nx-two: a\r\nx-two: b\r\n\r\n",
            ),
            (
                RequestFraming::Length(12),
                "GET /a?b HTTP/1.1\r\nhost: example.com\r\nx-two: a\r\nx-two: b\r\ncontent-length: 12\r\n\r\n",
            ),
            (
                RequestFraming::Chunked,
                "GET /a?b HTTP/1.1\r\nhost: example.com\r\nx-two: a\r\nx-two: b\r\ntransfer-encoding: chunked\r\n\r\n",
            ),
        ] {
            let mut out = Vec::new();
            write_request_head(&mut out, &Method::GET, "/a?b", &headers, framing);
            assert_eq!(String::from_utf8_lossy(&out), expected);
        }
        assert_eq!(chunk_line(255), b"ff\r\n");
    }

    /// What a response head parses to: its framing and whether the
    /// connection may be reused, or the error.
    fn parsed(
        head: &str,
        method: &Method,
    ) -> Result<Option<(u16, ResponseFraming, bool)>, WireError> {
        let mut buf = BytesMut::from(head);
        parse_response_head(&mut buf, method)
            .map(|head| head.map(|head| (head.status.as_u16(), head.framing, head.reusable)))
    }

    #[test]
    fn response_framing_is_rfc_9112_section_6_3() {
        use ResponseFraming::{Chunked, Empty, Length, Switched, UntilClose};
        let get = Method::GET;
        for (head, method, expected) in [
            ("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n", &get, (200, Length(3), true)),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &get, (200, Empty, true)),
            ("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\ncontent-length: 3\r\n\r\n", &get, (200, Length(3), true)),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", &get, (200, Chunked, true)),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n", &get, (200, Chunked, true)),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n", &get, (200, UntilClose, false)),
            ("HTTP/1.1 200 OK\r\n\r\n", &get, (200, UntilClose, false)),
            ("HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: keep-alive, Close\r\n\r\n", &get, (200, Length(3), false)),
            ("HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 3\r\n\r\n", &get, (200, Length(3), true)),
            ("HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\n", &get, (200, Length(3), false)),
            ("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", &Method::HEAD, (200, Empty, true)),
            ("HTTP/1.1 204 No Content\r\n\r\n", &get, (204, Empty, true)),
            ("HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n", &get, (304, Empty, true)),
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n", &get, (201, Length(2), true)),
            ("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n", &get, (101, Switched, false)),
        ] {
            assert_eq!(parsed(head, method), Ok(Some(expected)), "{head:?}");
        }
    }

    #[test]
    fn ambiguous_or_broken_responses_are_errors() {
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "x: y\r\n".repeat(MAX_HEADERS + 1)
        );
        let long = format!("HTTP/1.1 200 OK\r\nx: {}", "y".repeat(MAX_HEAD));
        for (head, error) in [
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
                WireError::LengthAndEncoding,
            ),
            (
                "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                WireError::EncodingInHttp10,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
                WireError::InvalidLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\n",
                WireError::InvalidLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\n",
                WireError::InvalidLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                WireError::InvalidLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
                WireError::InvalidLength,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
                WireError::InvalidLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
                WireError::Malformed(httparse::Error::HeaderName),
            ),
            (
                "SSH-2.0-OpenSSH\r\n\r\n",
                WireError::Malformed(httparse::Error::Version),
            ),
            (many.as_str(), WireError::TooManyHeaders),
            (long.as_str(), WireError::HeadTooLong),
        ] {
            assert_eq!(
                parsed(head, &Method::GET),
                Err(error.clone()),
                "{head:.80?}"
            );
        }
    }

    #[test]
    fn a_partial_head_asks_for_more_and_leaves_the_body() {
        assert_eq!(
            parsed("HTTP/1.1 200 OK\r\ncontent-len", &Method::GET),
            Ok(None)
        );
        let mut buf =
            BytesMut::from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a: b\r\n\r\nokHTTP");
        let head = parse_response_head(&mut buf, &Method::GET)
            .expect("valid")
            .expect("complete");
        assert_eq!(head.header_map().expect("valid")["x-a"], "b");
        assert_eq!(&buf[..], b"okHTTP");
    }

    /// Decodes `input` fed `step` bytes at a time; the body and what
    /// follows it (read or not).
    fn decode(
        framing: ResponseFraming,
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, Vec<u8>), WireError> {
        let mut decoder = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::Done => return Ok((body, [&buf[..], &input[fed..]].concat())),
                Decoded::NeedMore if fed == input.len() => {
                    decoder.end_of_input()?;
                    return Ok((body, buf.to_vec()));
                }
                Decoded::NeedMore => {
                    let next = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..next]);
                    fed = next;
                }
            }
        }
    }

    #[test]
    fn bodies_end_where_their_framing_says_fed_whole_or_byte_by_byte() {
        use ResponseFraming::{Chunked, Length, UntilClose};
        let chunked =
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\nx-other: 2\r\n\r\nNEXT";
        for step in [1, 3, chunked.len()] {
            assert_eq!(
                decode(Chunked, chunked, step),
                Ok((b"hello world".to_vec(), b"NEXT".to_vec())),
                "step {step}"
            );
            assert_eq!(
                decode(Chunked, b"2\r\nok\r\n0\r\n\r\n", step),
                Ok((b"ok".to_vec(), Vec::new()))
            );
            assert_eq!(
                decode(Length(5), b"helloNEXT", step),
                Ok((b"hello".to_vec(), b"NEXT".to_vec()))
            );
            assert_eq!(
                decode(UntilClose, b"all of it", step),
                Ok((b"all of it".to_vec(), Vec::new()))
            );
        }
        assert_eq!(
            decode(ResponseFraming::Empty, b"NEXT", 4),
            Ok((Vec::new(), b"NEXT".to_vec()))
        );
    }

    #[test]
    fn broken_or_cut_bodies_are_errors() {
        use ResponseFraming::{Chunked, Length};
        for (framing, input, error) in [
            (
                Chunked,
                &b"zz\r\nhello\r\n0\r\n\r\n"[..],
                WireError::InvalidChunk,
            ),
            (Chunked, b"5\r\nhelloXX0\r\n\r\n", WireError::InvalidChunk),
            (Chunked, b"5\r\nhel", WireError::Truncated),
            (Chunked, b"0\r\nx-trailer: 1\r\n", WireError::Truncated),
            (Length(5), b"hel", WireError::Truncated),
            // A stray empty line is not the last chunk.
            (
                Chunked,
                b"5\r\nhello\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                WireError::InvalidChunk,
            ),
            (Chunked, b";x\r\n", WireError::InvalidChunk),
            (
                Chunked,
                b" 5\r\nhello\r\n0\r\n\r\n",
                WireError::InvalidChunk,
            ),
            (
                Chunked,
                b"5;a\nb\r\nhello\r\n0\r\n\r\n",
                WireError::InvalidChunk,
            ),
            (Chunked, b"5\nhello\r\n0\r\n\r\n", WireError::InvalidChunk),
            (
                Chunked,
                b"0\r\nnot a field\r\n\r\n",
                WireError::InvalidChunk,
            ),
        ] {
            assert_eq!(decode(framing, input, 1), Err(error.clone()), "{input:?}");
        }
        let endless_size_line = vec![b'1'; MAX_CHUNK_LINE + 2];
        assert_eq!(
            decode(Chunked, &endless_size_line, 64),
            Err(WireError::InvalidChunk)
        );
        let endless_trailers = [&b"0\r\nx: "[..], &vec![b'y'; MAX_HEAD + 1]].concat();
        assert_eq!(
            decode(Chunked, &endless_trailers, 4096),
            Err(WireError::HeadTooLong)
        );
    }
}
