//! The bots-only policy: which canonical paths (see
//! `front::target`) only clients on the flag path may reach, read
//! as the most lenient router could read them without making them shorter,
//! and, where a hop that decodes the path again would end it early, as
//! that hop's next server reads it too; also the rest after a script
//! segment (`/index.php/api/crawl`, as PHP front controllers route it) and,
//! for prefixes with punctuation, with punctuation read as `_` (as `CherryPy` reads it).

/// The `policy.bots_only` prefixes, read as [`policy_path`] reads a request's
/// path and without a trailing `/`: made once, compared for every request.
#[derive(Debug)]
pub(crate) struct BotsOnly {
    prefixes: Vec<String>,
    /// The prefixes that hold punctuation, with it read as `_` (see
    /// [`fold_punctuation`]).
    punctuated: Vec<String>,
}

impl BotsOnly {
    pub(crate) fn new(prefixes: &[String]) -> Self {
        let prefixes: Vec<String> = prefixes
            .iter()
            .map(|prefix| policy_path(prefix).trim_end_matches('/').to_owned())
            .collect();
        let punctuated = prefixes
            .iter()
            .map(|prefix| fold_punctuation(prefix))
            .filter(|folded| folded.contains('_'))
            .collect();
        Self {
            prefixes,
            punctuated,
        }
    }

    /// Whether `path` is under a prefix, compared the way the most lenient
    /// upstream might read it (see [`policy_path`]), on segment boundaries;
    /// a format suffix on the prefix's last segment is under it too
    /// (`/api/crawl.json`: Rails routes `/api/crawl` as
    /// `/api/crawl(.:format)`, and so do Django REST framework's format
    /// suffixes).
    ///
    /// A path that, decoded, holds a `?`, `#` or space (`/api/crawl%3Fx`)
    /// is also compared as cut there: a hop behind the proxy that decodes
    /// the path and passes it on (nginx's `proxy_pass` with `$uri`) sends
    /// the next one `/api/crawl?x`, whose path is `/api/crawl`. Either
    /// reading under a prefix is enough: the cut one only ever refuses
    /// more.
    pub(crate) fn covers(&self, path: &str) -> bool {
        if self.prefixes.is_empty() {
            return false;
        }
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        let cut = decoded
            .find(ENDS_A_PATH_ONCE_DECODED)
            .map(|at| &decoded[..at]);
        self.covers_reading(&read_decoded(&decoded, Parameters::Dropped))
            || cut.is_some_and(|cut| self.covers_reading(&read_decoded(cut, Parameters::Dropped)))
            // CherryPy keeps `;v2` and reads it as `_v2`.
            || (!self.punctuated.is_empty()
                && self.covers_reading(&read_decoded(&decoded, Parameters::Kept)))
    }

    /// Whether one reading of a path is under a prefix: as it is, after a
    /// script segment (see [`after_scripts`]), or, for prefixes with
    /// punctuation, with its punctuation read as `_`.
    ///
    /// The path is folded once, not once per script segment: a path of
    /// many `a.b/` segments would otherwise cost time quadratic in its
    /// length (a 64 KiB head took 1.3 s of CPU).
    fn covers_reading(&self, path: &str) -> bool {
        let folded = (!self.punctuated.is_empty()).then(|| fold_punctuation(path));
        // Folding keeps every byte offset (ASCII punctuation becomes `_`),
        // so a rest of `path` starts at the same offset in `folded`.
        debug_assert!(folded
            .as_deref()
            .is_none_or(|folded| folded.len() == path.len()));
        let covers_from = |at: usize| {
            let rest = path.get(at..).unwrap_or_default();
            self.prefixes
                .iter()
                .any(|prefix| under(rest, prefix, &['/', '.']))
                || folded.as_deref().is_some_and(|folded| {
                    let rest = folded.get(at..).unwrap_or_default();
                    self.punctuated
                        .iter()
                        .any(|prefix| under(rest, prefix, &['/']))
                })
        };
        covers_from(0) || after_scripts(path).any(covers_from)
    }
}

/// Whether `path` is `prefix` or under it, the next character one of
/// `suffixes`.
fn under(path: &str, prefix: &str, suffixes: &[char]) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(suffixes))
}

/// Where each rest of `path` (a policy path) starts after a segment that
/// may name a script: one with an extension (`index.php`, `site.wsgi`, `app.py`,
/// `run.cgi`). Servers hand the rest to such a script as `PATH_INFO`
/// (Apache's `AcceptPathInfo` with `mod_php`, `mod_wsgi` or CGI, PHP's
/// built-in server, nginx's `fastcgi_split_path_info`), and front
/// controllers (Laravel, Symfony, Flask under `mod_wsgi`) route it:
/// `/index.php/api/crawl` as `/api/crawl`. Any extension, since the list of
/// handlers a site maps is its own.
fn after_scripts(path: &str) -> impl Iterator<Item = usize> + '_ {
    path.match_indices('/').filter_map(move |(at, _)| {
        let name = path[..at].rsplit('/').next().unwrap_or_default();
        let script = name
            .rfind('.')
            .is_some_and(|dot| dot > 0 && dot + 1 < name.len());
        script.then_some(at)
    })
}

/// `path` with every ASCII punctuation character but `/` read as `_` (each
/// byte offset kept), as
/// `CherryPy`'s default dispatcher reads each segment before it looks up the
/// handler (`/api/v2-crawl` and `/api/v2.crawl` reach `v2_crawl`).
fn fold_punctuation(path: &str) -> String {
    path.chars()
        .map(|letter| {
            if letter.is_ascii_punctuation() && letter != '/' {
                '_'
            } else {
                letter
            }
        })
        .collect()
}

/// What ends a path for a server that reads it after a hop decoded it:
/// the query's `?`, the fragment's `#`, and the space that ends the
/// request target in an HTTP/1.1 request line.
const ENDS_A_PATH_ONCE_DECODED: [char; 3] = ['?', '#', ' '];

/// `path` as the policy compares it: the most lenient reading of a
/// canonical target (`front::target`) that never makes it
/// shorter; canonical targets have no dot segment in any reading, so the
/// `..` resolution here never applies to one. Percent-decoded, `\\` read as `/`,
/// `;parameters` dropped from each segment, `.` and `..` resolved, empty
/// segments collapsed, lower case. So `/API/%63rawl`, `//api/crawl`,
/// `/x/../api/crawl` and `/api;x/crawl` all compare as `/api/crawl`.
fn policy_path(path: &str) -> String {
    read_decoded(
        &percent_encoding::percent_decode_str(path).decode_utf8_lossy(),
        Parameters::Dropped,
    )
}

/// [`policy_path`] of a path already percent-decoded.
fn read_decoded(decoded: &str, parameters: Parameters) -> String {
    let mut segments: Vec<String> = Vec::new();
    for segment in decoded.replace('\\', "/").split('/') {
        let segment = match parameters {
            Parameters::Dropped => segment.split(';').next().unwrap_or_default(),
            Parameters::Kept => segment,
        };
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(fold_case(segment)),
        }
    }
    format!("/{}", segments.join("/"))
}

/// What a reading does with a segment's `;parameters`.
#[derive(Clone, Copy)]
enum Parameters {
    /// Drops them, as Tomcat-style servers do.
    Dropped,
    /// Keeps them, as part of the name (`CherryPy` reads `crawl;v2` as
    /// `crawl_v2`).
    Kept,
}

/// `segment` in lower case, with the four non-ASCII letters whose case
/// maps to ASCII in some router's case-insensitive matching read as those
/// ASCII letters: `İ` and `ı` as `i` (Python's `re.I`, Java's
/// `equalsIgnoreCase`), `ſ` as `s`, the Kelvin sign as `k`.
fn fold_case(segment: &str) -> String {
    segment
        .chars()
        .flat_map(|letter| match letter {
            '\u{130}' | '\u{131}' => 'i'.to_lowercase(),
            '\u{17f}' => 's'.to_lowercase(),
            '\u{212a}' => 'k'.to_lowercase(),
            letter => letter.to_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{fold_punctuation, policy_path, BotsOnly};

    #[test]
    fn bots_only_prefixes_end_on_segment_boundaries() {
        let prefixes = |list: &[&str]| {
            BotsOnly::new(&list.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>())
        };
        let crawl = prefixes(&["/api/crawl", "/Private/"]);
        for path in [
            "/api/crawl",
            "/api/crawl/",
            "/api/crawl/x",
            "/API/%63rawl",
            "/private",
            "/private/a",
        ] {
            assert!(crawl.covers(path), "{path}");
        }
        // Format suffixes and letters whose case folds to ASCII.
        for path in [
            "/api/crawl.json",
            "/api/crawl.",
            "/ap%C4%B1/crawl",
            "/AP\u{130}/crawl",
        ] {
            assert!(crawl.covers(path), "{path}");
        }
        let kelvin = prefixes(&["/kelvin"]);
        assert!(kelvin.covers("/\u{212a}elvin") && kelvin.covers("/%E2%84%AAelvin"));
        let s = prefixes(&["/s"]);
        assert!(s.covers("/\u{17f}/x"));
        for path in ["/", "/api", "/api/crawler", "/api/craw", "/privately"] {
            assert!(!crawl.covers(path), "{path}");
        }
        // Read as cut where a decoded `?`, `#` or space would end the path
        // for a hop that decodes it again; the path as a whole still counts.
        for path in [
            "/api/crawl%3Fx=1",
            "/api/crawl%3f",
            "/api/crawl%23",
            "/api/crawl%20x",
            "/api/crawl%3F/..",
            "/api/crawl/x%3F",
            "/private%23/x",
        ] {
            assert!(crawl.covers(path), "{path}");
        }
        for path in ["/api%3F/crawl", "/api/craw%23l", "/x%20/api/crawl"] {
            assert!(!crawl.covers(path), "{path}");
        }
        // After a script that takes the rest as PATH_INFO (PHP front
        // controllers); punctuation read as `_` for prefixes that have some
        // (CherryPy).
        for path in [
            "/index.php/api/crawl",
            "/blog/INDEX.PHP/api/crawl/x",
            "/app.cgi/api/crawl",
            "/site.wsgi/api/crawl",
            "/app.py/api/crawl",
            "/index.php/private",
        ] {
            assert!(crawl.covers(path), "{path}");
        }
        for path in [
            "/index.php",
            "/index.php/api",
            "/php/api/crawl",
            "/.php/api/crawl",
        ] {
            assert!(!crawl.covers(path), "{path}");
        }
        let versioned = prefixes(&["/api/crawl_v2"]);
        for path in [
            "/api/crawl_v2",
            "/api/crawl-v2",
            "/api/crawl.v2/x",
            "/api/crawl!v2",
            "/api/crawl%2Bv2",
            "/index.php/api/crawl~v2",
            // `;` too, which other readings take for parameters.
            "/api/crawl;v2",
            "/api/crawl%3Bv2/x",
            "/x/../api/crawl;v2",
        ] {
            assert!(versioned.covers(path), "{path}");
        }
        for path in ["/api/crawl", "/api/crawlv2", "/api/crawl-v3"] {
            assert!(!versioned.covers(path), "{path}");
        }
        let everything = prefixes(&["/"]);
        assert!(everything.covers("/") && everything.covers("/a/b"));
        assert!(!prefixes(&[]).covers("/api/crawl"));
    }

    /// A path of many script-like segments, as a 64 KiB head can hold, is
    /// read in time linear in its length with a punctuated prefix too (it
    /// was folded once per segment: 1.3 s of CPU for one request). Its
    /// rests are still judged: the protected path at the end is found.
    #[test]
    fn many_script_segments_are_judged_in_one_pass() {
        let versioned = BotsOnly::new(&["/api/crawl".to_owned(), "/api/v2_crawl".to_owned()]);
        let many = "/a.b".repeat(16_000);
        assert!(!versioned.covers(&many));
        assert!(versioned.covers(&format!("{many}/api/v2-crawl")));
        assert!(versioned.covers(&format!("{many}/api/crawl")));
    }

    /// Folding keeps every byte offset, so the fold of a rest is the rest
    /// of the fold: over generated paths with punctuation, script segments
    /// and characters that are not ASCII (which `covers` reads at the same
    /// offsets in both).
    #[test]
    fn folding_keeps_every_offset() {
        const PIECES: [&str; 9] = [
            "/", "a", ".", "-", ";", "\u{e9}", "\u{131}", "_", "\u{ff0e}",
        ];
        let mut paths = vec![String::from("/")];
        let mut round = paths.clone();
        for _ in 0..5 {
            round = round
                .iter()
                .flat_map(|path| PIECES.iter().map(move |piece| format!("{path}{piece}")))
                .collect();
            paths.extend(round.iter().cloned());
        }
        for path in &paths {
            let folded = fold_punctuation(path);
            assert_eq!(folded.len(), path.len(), "{path}");
            for (at, _) in path.match_indices('/') {
                assert_eq!(
                    fold_punctuation(&path[at..]),
                    folded[at..],
                    "{path} at {at}"
                );
            }
        }
    }

    #[test]
    fn policy_paths_are_canonical() {
        for path in [
            "/api/crawl",
            "/API/crawl",
            "/api/%63rawl",
            "//api//crawl",
            "/x/../api/crawl",
            "/api/./crawl",
            "/api;x/crawl",
            "/api%2Fcrawl",
            "/api\\crawl",
            "/api/crawl/",
        ] {
            assert_eq!(policy_path(path), "/api/crawl", "{path}");
        }
        assert_eq!(policy_path("/api/crawler"), "/api/crawler");
        assert_eq!(policy_path("/../../etc"), "/etc");
    }
}
