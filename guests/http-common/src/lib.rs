//! What the HTTP test guests share, so that every one of them reads its input and
//! writes its output the same way:
//!
//! - http-client's command line ([`Args`]) and one-line results ([`status_line`],
//!   [`error_line`], [`escape`]), used by http-client and its WASI 0.3 twin;
//! - URLs split for `wasi:http` ([`Url`]) and redirects resolved ([`Url::join`]);
//! - query strings ([`query_param`], [`percent_decode`]);
//! - requests and responses through `wasi:http` 0.2 ([`p2`]).

pub mod p2;

/// How many bytes of a body a result line shows.
pub const BODY_SHOWN: usize = 120;

/// How many redirects `--follow` follows before it prints the next answer as it is.
pub const MAX_REDIRECTS: usize = 5;

/// The size of each write of a body.
pub const CHUNK: usize = 64 * 1024;

/// The result line of a response: `status=200 len=5 body=hello`, where `len` is the
/// number of body bytes read and `body` the first [`BODY_SHOWN`] of them, escaped.
pub fn status_line(status: u16, len: u64, body: &[u8]) -> String {
    format!(
        "status={status} len={len} body={}",
        escape(&body[..body.len().min(BODY_SHOWN)])
    )
}

/// The result line of a request that failed: `error=<code>`, where `code` is the
/// `Debug` form of a `wasi:http` error-code (`ErrorCode::HttpRequestDenied`) or, for
/// a failure that has none, a few words.
pub fn error_line(code: impl std::fmt::Debug) -> String {
    format!("error={code:?}")
}

/// Bytes as one line of ASCII: printable characters as they are, `\\`, `\n`, `\r`
/// and `\t` as two characters each, any other byte as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Whether a status asks the client to go elsewhere (and `--follow` follows it).
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The method of the request that follows a redirect, and whether it keeps the body:
/// 303 turns anything but HEAD into a GET without a body, 301 and 302 turn a POST into
/// one (as browsers and curl do), 307 and 308 keep both.
pub fn redirected_method(status: u16, method: &str) -> (String, bool) {
    let to_get = match status {
        303 => !method.eq_ignore_ascii_case("HEAD"),
        301 | 302 => method.eq_ignore_ascii_case("POST"),
        _ => false,
    };
    if to_get {
        ("GET".to_owned(), false)
    } else {
        (method.to_owned(), true)
    }
}

/// A URL split the way `wasi:http` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// As written (`http`, `https`, ...).
    pub scheme: String,
    /// `host` or `host:port`.
    pub authority: String,
    /// Starts with `/`.
    pub path_with_query: String,
}

impl Url {
    /// Splits `scheme://authority/path?query`; a missing path is `/`.
    pub fn parse(url: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("bad url {url:?}: {why}");
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(bad("bad scheme"));
        }
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        // A fragment is the client's own business: it is never sent.
        let path = path.split('#').next().unwrap_or_default();
        let path_with_query = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Url {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            path_with_query,
        })
    }

    /// The URL a `Location` header names, relative to this one: absolute
    /// (`https://host/x`), scheme-relative (`//host/x`), absolute path (`/x`) or
    /// relative to this URL's directory (`x`).
    pub fn join(&self, location: &str) -> Result<Url, String> {
        let location = location.trim();
        if location.starts_with("//") {
            return Url::parse(&format!("{}:{location}", self.scheme));
        }
        let has_scheme = location
            .find("://")
            .is_some_and(|i| !location[..i].contains(['/', '?', '#']));
        if has_scheme {
            return Url::parse(location);
        }
        let path_with_query = if location.starts_with('/') {
            location.to_owned()
        } else {
            let path = self.path_with_query.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Url {
            path_with_query: path_with_query
                .split('#')
                .next()
                .unwrap_or_default()
                .to_owned(),
            ..self.clone()
        })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme, self.authority, self.path_with_query
        )
    }
}

/// What a request or response body is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `n` bytes of `x`, written [`CHUNK`] bytes at a time (never all in memory).
    Xs(u64),
    /// These bytes.
    Bytes(Vec<u8>),
}

impl Payload {
    /// No body.
    pub const EMPTY: Payload = Payload::Xs(0);

    pub fn len(&self) -> u64 {
        match self {
            Payload::Xs(n) => *n,
            Payload::Bytes(bytes) => bytes.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body in pieces of at most [`CHUNK`] bytes, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        static XS: [u8; CHUNK] = [b'x'; CHUNK];
        let (bytes, repeat): (&[u8], u64) = match self {
            Payload::Xs(n) => (&[], *n),
            Payload::Bytes(bytes) => (bytes, 0),
        };
        let whole = repeat / CHUNK as u64;
        let rest = (repeat % CHUNK as u64) as usize;
        bytes
            .chunks(CHUNK)
            .chain((0..whole).map(|_| &XS[..]))
            .chain((rest > 0).then(|| &XS[..rest]))
    }
}

/// http-client's command line: `METHOD URL [--body N] [--follow] [--parallel K]
/// [--header NAME:VALUE]...` (after the program's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub method: String,
    pub url: String,
    /// `--body N`: N bytes of `x`, with a content-length.
    pub body: u64,
    /// `--follow`: follow up to [`MAX_REDIRECTS`] redirects.
    pub follow: bool,
    /// `--parallel K`: K identical requests, all sent before any answer is awaited.
    pub parallel: usize,
    /// `--header NAME:VALUE`, in order.
    pub headers: Vec<(String, String)>,
}

/// The usage line printed (on stderr) for a bad command line.
pub const USAGE: &str =
    "usage: METHOD URL [--body N] [--follow] [--parallel K] [--header NAME:VALUE]...";

impl Args {
    /// Parses the arguments after the program's name.
    pub fn parse(args: &[String]) -> Result<Args, String> {
        let mut positional = Vec::new();
        let mut parsed = Args {
            method: String::new(),
            url: String::new(),
            body: 0,
            follow: false,
            parallel: 1,
            headers: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match arg.as_str() {
                "--body" => {
                    let n = value("--body")?;
                    parsed.body = n.parse().map_err(|_| format!("bad --body {n:?}"))?;
                }
                "--follow" => parsed.follow = true,
                "--parallel" => {
                    let k = value("--parallel")?;
                    parsed.parallel = k
                        .parse()
                        .ok()
                        .filter(|&k| k > 0)
                        .ok_or_else(|| format!("bad --parallel {k:?}"))?;
                }
                "--header" => {
                    let h = value("--header")?;
                    let (name, v) = h
                        .split_once(':')
                        .ok_or_else(|| format!("bad --header {h:?} (NAME:VALUE)"))?;
                    parsed
                        .headers
                        .push((name.trim().to_owned(), v.trim().to_owned()));
                }
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                _ => positional.push(arg.clone()),
            }
        }
        match <[String; 2]>::try_from(positional) {
            Ok([method, url]) => {
                parsed.method = method;
                parsed.url = url;
                Ok(parsed)
            }
            Err(_) => Err("expected METHOD and URL".to_owned()),
        }
    }

    /// The request's body.
    pub fn payload(&self) -> Payload {
        Payload::Xs(self.body)
    }
}

/// The raw (still percent-encoded) value of `name` in the query of a path.
pub fn query_param<'a>(path_with_query: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = path_with_query.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// The path of a path-with-query.
pub fn path_only(path_with_query: &str) -> &str {
    path_with_query.split('?').next().unwrap_or_default()
}

/// Decodes `%XX` escapes and `+` (a space); a malformed escape stays as it is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn urls() {
        let u = url("http://127.0.0.1:8000/a/b?x=1#frag");
        assert_eq!(u.scheme, "http");
        assert_eq!(u.authority, "127.0.0.1:8000");
        assert_eq!(u.path_with_query, "/a/b?x=1");
        assert_eq!(url("https://h").path_with_query, "/");
        assert_eq!(url("https://h?q").path_with_query, "/?q");
        assert!(Url::parse("h/x").is_err());
        assert!(Url::parse("http:///x").is_err());
    }

    #[test]
    fn redirects() {
        let base = url("http://h:1/a/b?x=1");
        assert_eq!(base.join("c").unwrap().to_string(), "http://h:1/a/c");
        assert_eq!(base.join("/c?d").unwrap().to_string(), "http://h:1/c?d");
        assert_eq!(base.join("//g/z").unwrap().to_string(), "http://g/z");
        assert_eq!(
            base.join("https://other:2/").unwrap().to_string(),
            "https://other:2/"
        );
        assert_eq!(
            base.join("c?u=http://x").unwrap().to_string(),
            "http://h:1/a/c?u=http://x"
        );
        assert_eq!(redirected_method(303, "PUT"), ("GET".into(), false));
        assert_eq!(redirected_method(302, "POST"), ("GET".into(), false));
        assert_eq!(redirected_method(307, "POST"), ("POST".into(), true));
    }

    #[test]
    fn lines() {
        assert_eq!(escape(b"a b\\\n\x01"), "a b\\\\\\n\\x01");
        let long = vec![b'y'; 200];
        assert_eq!(
            status_line(200, 200, &long),
            format!("status=200 len=200 body={}", "y".repeat(120))
        );
    }

    #[test]
    fn payload_chunks() {
        let p = Payload::Xs(CHUNK as u64 * 2 + 3);
        let lens: Vec<usize> = p.chunks().map(<[u8]>::len).collect();
        assert_eq!(lens, [CHUNK, CHUNK, 3]);
        assert_eq!(Payload::EMPTY.chunks().count(), 0);
        assert_eq!(
            Payload::Bytes(b"ab".to_vec()).chunks().collect::<Vec<_>>(),
            [b"ab"]
        );
    }

    #[test]
    fn args() {
        let a: Vec<String> = [
            "POST",
            "http://h/",
            "--body",
            "5",
            "--follow",
            "--parallel",
            "3",
            "--header",
            "x-a: b",
        ]
        .map(String::from)
        .to_vec();
        let parsed = Args::parse(&a).unwrap();
        assert_eq!((parsed.body, parsed.follow, parsed.parallel), (5, true, 3));
        assert_eq!(parsed.headers, [("x-a".to_owned(), "b".to_owned())]);
        assert!(Args::parse(&a[..1]).is_err());
    }

    #[test]
    fn queries() {
        assert_eq!(
            query_param("/f?a=1&url=http%3A%2F%2Fh%2F", "url"),
            Some("http%3A%2F%2Fh%2F")
        );
        assert_eq!(percent_decode("http%3A%2F%2Fh%2F%zz+x"), "http://h/%zz x");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(path_only("/a?b"), "/a");
    }
}
