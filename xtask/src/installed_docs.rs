//! The Markdown files the package installs in `/usr/share/doc/rca-tools`,
//! side by side: their relative links are written for the repository's
//! layout (`../docs/bot-authors.md`), so each is copied with every link
//! to another installed file pointed at its name there, and every link to a
//! file left out turned into its text and the file's path in the source,
//! which a reader can still find and which points nowhere broken.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;

/// Installed files: the path in the repository, and the name in
/// `/usr/share/doc/rca-tools`.
pub(crate) const INSTALLED: [(&str, &str); 3] = [
    ("rca-tools/README.md", "README.md"),
    ("docs/bot-authors.md", "bot-authors.md"),
    // The rules a bot in any language must follow (bot-authors.md sends
    // readers there).
    (
        "rustls-req-client-auth/SPECIFICATION.md",
        "SPECIFICATION.md",
    ),
];

/// Writes the [`INSTALLED`] files of the repository at `root` into `out`,
/// with their links rewritten.
pub(crate) fn write(root: &Path, out: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (source, name) in INSTALLED {
        let path = root.join(source);
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let target = out.join(name);
        fs::write(&target, rewrite_links(&text, Path::new(source)))
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(())
}

/// `text` (the file at `source`, relative to the repository) with its
/// inline links (`[text](target)`) to other files rewritten for the
/// installed layout; links to web pages and within the file stay, and so
/// does code (fenced blocks and `code spans`) and images.
fn rewrite_links(text: &str, source: &Path) -> String {
    let dir = source.parent().unwrap_or(Path::new(""));
    let mut out = String::with_capacity(text.len());
    let mut fenced = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || line.trim_start().starts_with("```") {
            out.push_str(line);
        } else {
            rewrite_line(line, dir, &mut out);
        }
    }
    out
}

/// One line of prose, to `out` (see [`rewrite_links`]).
fn rewrite_line(line: &str, dir: &Path, out: &mut String) {
    let mut rest = line;
    while let Some(link) = next_link(rest) {
        out.push_str(&rest[..link.start]);
        let (file, fragment) = link
            .target
            .split_once('#')
            .map_or((link.target, ""), |(file, fragment)| (file, fragment));
        let in_repository = normalized(&dir.join(file));
        match INSTALLED
            .iter()
            .find(|(path, _)| Path::new(path) == in_repository)
        {
            Some((_, name)) => {
                out.push_str(&format!("[{}]({name}", link.text));
                if !fragment.is_empty() {
                    out.push('#');
                    out.push_str(fragment);
                }
                out.push(')');
            }
            None => out.push_str(&format!(
                "{} (`{}` in the source repository)",
                link.text,
                in_repository.display()
            )),
        }
        rest = &rest[link.end..];
    }
    out.push_str(rest);
}

/// An inline link to a relative file, found in a text.
#[derive(Debug, PartialEq)]
struct Link<'a> {
    /// Where `[` is.
    start: usize,
    /// Just past `)`.
    end: usize,
    text: &'a str,
    target: &'a str,
}

/// The first inline link in `text` (one line) whose target is a file by a
/// relative path (not a URL, not `#fragment` alone), outside code spans
/// and not an image.
fn next_link(text: &str) -> Option<Link<'_>> {
    let mut from = 0;
    while let Some(found) = text[from..].find("](") {
        let middle = from + found;
        from = middle + 2;
        let Some(start) = text[..middle].rfind('[') else {
            continue;
        };
        let link_text = &text[start + 1..middle];
        let Some(length) = text[middle + 2..].find(')') else {
            continue;
        };
        let target = &text[middle + 2..middle + 2 + length];
        let relative_file = !target.is_empty()
            && !target.contains(char::is_whitespace)
            && !target.contains("://")
            && !target.starts_with('#')
            && !target.starts_with("mailto:");
        // An odd number of backticks before it: inside a code span.
        let in_code = text[..start].matches('`').count() % 2 == 1;
        let image = text[..start].ends_with('!');
        if relative_file && !link_text.contains(']') && !in_code && !image {
            return Some(Link {
                start,
                end: middle + 3 + length,
                text: link_text,
                target,
            });
        }
    }
    None
}

/// `path` with its `.` and `..` components resolved (textually: no file
/// is looked at).
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_installed_files_point_at_their_names() {
        let text = "see [docs/bot-authors.md](../docs/bot-authors.md) and \
                    [the rules](../rustls-req-client-auth/SPECIFICATION.md#choices-this-project-makes).";
        assert_eq!(
            rewrite_links(text, Path::new("rca-tools/README.md")),
            "see [docs/bot-authors.md](bot-authors.md) and \
             [the rules](SPECIFICATION.md#choices-this-project-makes)."
        );
        assert_eq!(
            rewrite_links(
                "[rca-tools/README.md](../rca-tools/README.md)",
                Path::new("docs/bot-authors.md")
            ),
            "[rca-tools/README.md](README.md)"
        );
    }

    #[test]
    fn links_to_files_left_out_become_their_paths() {
        assert_eq!(
            rewrite_links(
                "[rustls-req-client-auth](../rustls-req-client-auth/README.md) gives",
                Path::new("docs/bot-authors.md")
            ),
            "rustls-req-client-auth (`rustls-req-client-auth/README.md` in the source repository) gives"
        );
    }

    #[test]
    fn urls_fragments_code_and_images_stay() {
        let text = "[a](https://example.com/x.md) [b](#websockets) `v[0](x)` [c]() \
                    ![d](e.png)\n```\n[f](../docs/bot-authors.md)\n```\n";
        assert_eq!(rewrite_links(text, Path::new("docs/bot-authors.md")), text);
        // After a code span, links count again.
        assert_eq!(
            rewrite_links(
                "`x` [g](../docs/bot-authors.md)",
                Path::new("rca-tools/README.md")
            ),
            "`x` [g](bot-authors.md)"
        );
    }
}
