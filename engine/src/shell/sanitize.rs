//! Removal of bytes that hide commands from readers but not from shells.

use std::borrow::Cow;

/// Strips ANSI CSI sequences (`ESC [ ... letter`), NUL, CR, and every control character
/// below 0x20 except TAB and LF. `"r\x00m -rf /"` becomes `rm -rf /`.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b < 0x20 && b != b'\t' && b != b'\n') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, up to and including the final letter.
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() || n == '~' || n == '@' {
                    break;
                }
            }
            continue;
        }
        if (c as u32) < 0x20 && c != '\t' && c != '\n' {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_nul_controls_cr_and_csi() {
        assert_eq!(sanitize("r\x00m -rf /"), "rm -rf /");
        assert_eq!(sanitize("\x1b[31mrm\x1b[0m -rf /\r"), "rm -rf /");
        assert_eq!(sanitize("a\tb\nc\x07"), "a\tb\nc");
        assert!(matches!(sanitize("plain"), Cow::Borrowed(_)));
    }
}
