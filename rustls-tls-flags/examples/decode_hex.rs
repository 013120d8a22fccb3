//! Decodes a `tls_flags` `extension_data` given as hex and prints its flags,
//! one per line, with their names.
//!
//! ```text
//! $ cargo run -p rustls-tls-flags --example decode_hex -- 03280080
//! 3
//! 5
//! 23
//! $ cargo run -p rustls-tls-flags --example decode_hex -- "02 01 00"
//! error: tls_flags value is not minimal: ... (TF-3, illegal_parameter)
//! ```
//!
//! Exits with status 1 on bad hex or a malformed extension.

use std::fmt;
use std::process::ExitCode;

use clap::Parser;
use rustls_tls_flags::{decode, extension_type};

/// Command-line arguments; the help texts are plain strings so that they
/// print as written.
#[derive(Parser)]
#[command(
    about = "Decode the extension_data of a TLS Flags extension (draft-ietf-tls-tlsflags-15)",
    after_help = "Examples:\n  decode_hex 03280080\n  decode_hex \"0b 00 00 00 00 00 00 00 00 00 00 01\"\n"
)]
struct Args {
    #[arg(
        required = true,
        value_name = "HEX",
        help = "The extension_data in hex: the length octet, then the flag octets \
                (spaces allowed; several arguments are joined)"
    )]
    hex: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let input = args.hex.join(" ");

    let data = match parse_hex(&input) {
        Ok(data) => data,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };

    match decode(&data) {
        Ok(view) => {
            for flag in view {
                println!("{flag}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            if looks_like_whole_extension(&data) {
                eprintln!(
                    "note: this starts with a tls_flags extension type; pass only the \
                     extension_data, after the type and the 2-octet length"
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether `data` starts with a `tls_flags` extension type (62 or 0xFE01), a
/// likely mistake: the codec wants only what follows type and length.
fn looks_like_whole_extension(data: &[u8]) -> bool {
    [
        extension_type::TLS_FLAGS,
        extension_type::TLS_FLAGS_EXPERIMENTAL,
    ]
    .iter()
    .any(|ty| data.starts_with(&ty.to_be_bytes()))
}

/// Why the command-line argument is not hex.
#[derive(Debug, PartialEq)]
enum HexError {
    /// A character that is neither a hex digit nor whitespace, at a 1-based
    /// character position of the (joined) input.
    BadChar { ch: char, position: usize },
    /// An odd number of hex digits: the last octet is half there.
    OddDigits { digits: usize },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadChar { ch, position } => write!(
                f,
                "bad hex: {ch:?} at character {position} is not a hex digit (0-9, a-f, A-F) or a space"
            ),
            Self::OddDigits { digits } => write!(
                f,
                "bad hex: {digits} hex digits, an odd number; each octet needs two"
            ),
        }
    }
}

/// Hex digits to bytes, skipping whitespace anywhere (also inside an octet).
fn parse_hex(input: &str) -> Result<Vec<u8>, HexError> {
    let mut nibbles = Vec::with_capacity(input.len());
    for (i, ch) in input.chars().enumerate() {
        if ch.is_whitespace() {
            continue;
        }
        let nibble = ch.to_digit(16).ok_or(HexError::BadChar {
            ch,
            position: i + 1,
        })?;
        nibbles.push(u8::try_from(nibble).expect("a hex digit fits a u8"));
    }
    if nibbles.len() % 2 != 0 {
        return Err(HexError::OddDigits {
            digits: nibbles.len(),
        });
    }
    Ok(nibbles
        .chunks_exact(2)
        .map(|p| (p[0] << 4) | p[1])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{parse_hex, HexError};

    #[test]
    fn parses_with_and_without_spaces() {
        assert_eq!(parse_hex("03280080"), Ok(vec![3, 0x28, 0, 0x80]));
        assert_eq!(parse_hex(" 03 28 00 80 "), Ok(vec![3, 0x28, 0, 0x80]));
        assert_eq!(parse_hex("0B 0a"), Ok(vec![11, 10]));
    }

    #[test]
    fn reports_bad_characters_and_odd_lengths() {
        assert_eq!(
            parse_hex("03 2g"),
            Err(HexError::BadChar {
                ch: 'g',
                position: 5
            })
        );
        assert_eq!(parse_hex("032"), Err(HexError::OddDigits { digits: 3 }));
    }
}
