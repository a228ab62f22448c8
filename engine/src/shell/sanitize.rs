//! Removal of bytes that hide commands from readers but not from shells.

use std::borrow::Cow;

/// Strips ANSI CSI sequences (`ESC [` parameters, intermediates, final byte), NUL, CR,
/// and every control character below 0x20 except TAB and LF. `"r\x00m -rf /"` becomes
/// `rm -rf /`. A malformed sequence, or one that would swallow a quote, loses only its
/// ESC: what the shell reads as quoting must stay.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b < 0x20 && b != b'\t' && b != b'\n') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let b = text.as_bytes();
    while i < b.len() {
        if b[i] == 0x1b
            && let Some(len) = csi_len(&b[i..])
        {
            i += len;
            continue;
        }
        let c = text[i..].chars().next().expect("char boundary");
        if !((c as u32) < 0x20 && c != '\t' && c != '\n') {
            out.push(c);
        }
        i += c.len_utf8();
    }
    Cow::Owned(out)
}

/// Length of a well-formed CSI sequence at the head of `b` (ESC `[` params* inters* final).
fn csi_len(b: &[u8]) -> Option<usize> {
    if b.get(1) != Some(&b'[') {
        return None;
    }
    let mut j = 2;
    while j < b.len() && (0x30..=0x3f).contains(&b[j]) {
        j += 1;
    }
    while j < b.len() && (0x20..=0x2f).contains(&b[j]) && !matches!(b[j], b'\'' | b'"') {
        j += 1;
    }
    let f = *b.get(j)?;
    ((0x40..=0x7e).contains(&f) && !matches!(f, b'\\' | b'`')).then_some(j + 1)
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
        // A sequence that would swallow a quote loses only its ESC.
        assert_eq!(sanitize("echo '\x1b[';a"), "echo '[';a");
        assert_eq!(sanitize("\x1b[1;31mred"), "red");
    }
}
