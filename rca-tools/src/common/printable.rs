//! Text from a peer, made safe to show: a terminal or a log viewer acts on
//! control characters (escape sequences that move the cursor or set a
//! window's title, a carriage return that overwrites a line), on the marks
//! that reorder text (a right-to-left override), and on Unicode's line and
//! paragraph separators. Each is written as Rust writes it, `\u{1b}`, so
//! that the text still says what came.

use std::borrow::Cow;

/// `text` with every character a terminal or log viewer would act on
/// escaped (`\u{202e}`); borrowed when there is none, as nearly always.
#[must_use]
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        if acts(character) {
            out.extend(character.escape_unicode());
        } else {
            out.push(character);
        }
    }
    Cow::Owned(out)
}

/// Whether a terminal or log viewer acts on `character` rather than
/// showing it.
fn acts(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            // Marks that set or reorder the direction of text.
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators.
            | '\u{2028}' | '\u{2029}'
            // Characters that show as nothing: a soft hyphen, zero-width
            // spaces and joiners, invisible operators, a byte order mark,
            // tags.
            | '\u{ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
            | '\u{e0000}'..='\u{e007f}'
        )
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn what_a_terminal_acts_on_is_escaped() {
        assert_eq!(printable("curl/8.5.0 (x86_64)"), "curl/8.5.0 (x86_64)");
        assert_eq!(printable("caf\u{e9}"), "caf\u{e9}");
        assert_eq!(
            printable("a\u{1b}]0;t\u{7}\r\u{202e}b\u{2028}c\u{9b}"),
            "a\\u{1b}]0;t\\u{7}\\u{d}\\u{202e}b\\u{2028}c\\u{9b}"
        );
        assert_eq!(
            printable("x\u{200b}y\u{feff}\u{e0041}"),
            "x\\u{200b}y\\u{feff}\\u{e0041}"
        );
    }
}
