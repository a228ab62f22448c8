//! RFC 8785 JSON Canonicalization Scheme (JCS) over `serde_json::Value`.
//!
//! - object members sorted by the UTF-16 code units of their names;
//! - no whitespace;
//! - strings escaped as ECMAScript `JSON.stringify` does: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//!   `\t`, other controls below U+0020 as `\u00xx` (lowercase hex), everything else literal;
//! - every number written as the ECMAScript `Number.prototype.toString` form of the IEEE
//!   double it denotes (`serde_json` values are always finite).

use serde_json::Value;

/// The JCS serialization of `value`.
pub fn to_canonical_string(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            // as_f64 is always Some without `arbitrary_precision`; integers beyond 2^53 are
            // rounded to the nearest double, as the IEEE model requires.
            let f = n.as_f64().unwrap_or(0.0);
            write_number(f, out);
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let entries = jcs_order(map);
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

/// Largest integer magnitude written exactly by both the integer and the double model
/// (2^53): up to here an integer's JCS form is its decimal digits and parses back to the same
/// `serde_json` number.
pub(crate) const MAX_EXACT_INT: u64 = 1 << 53;

/// Writes `value` as JCS when it is "plain": every number an integer of magnitude at most
/// 2^53, so the text parses back to an identical `Value` (a float or a larger integer would
/// come back as a different number variant or a rounded value). Returns `false`, with `out`
/// partially written, otherwise.
pub(crate) fn write_plain_value(value: &Value, out: &mut String) -> bool {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_EXACT_INT {
                    return false;
                }
                write_int(u as i128, out);
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_EXACT_INT {
                    return false;
                }
                write_int(i as i128, out);
            } else {
                return false;
            }
            true
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_plain_value(item, out) {
                    return false;
                }
            }
            out.push(']');
            true
        }
        Value::Object(map) => write_plain_object(map, out),
        other => {
            write_value(other, out);
            true
        }
    }
}

/// An object's members in JCS order: keys compared as UTF-16 code units.
fn jcs_order(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if entries.iter().all(|(k, _)| k.is_ascii()) {
        // UTF-16 order differs from byte order only outside ASCII (keys are unique, so an
        // unstable sort is exact).
        entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    } else {
        entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    }
    entries
}

/// [`write_plain_value`] for an object.
pub(crate) fn write_plain_object(map: &serde_json::Map<String, Value>, out: &mut String) -> bool {
    let entries = jcs_order(map);
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, out);
        out.push(':');
        if !write_plain_value(v, out) {
            return false;
        }
    }
    out.push('}');
    true
}

/// The JCS serialization of an object whose members named in `holes` (string values) are
/// written as `""`; returns, per hole, the byte offset just inside its quotes (`None` when the
/// object has no such member or its value is not a string, which is then written as is).
pub(crate) fn object_with_holes(
    map: &serde_json::Map<String, Value>,
    holes: &[&str],
) -> (String, Vec<Option<usize>>) {
    let mut at = vec![None; holes.len()];
    let entries = jcs_order(map);
    let mut out = String::with_capacity(640);
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, &mut out);
        out.push(':');
        match holes.iter().position(|h| h == k) {
            Some(h) if v.is_string() => {
                out.push('"');
                at[h] = Some(out.len());
                out.push('"');
            }
            _ => write_value(v, &mut out),
        }
    }
    out.push('}');
    (out, at)
}

/// An integer of magnitude ≤ 2^53 in JCS form (its decimal digits, `0` for zero).
pub(crate) fn write_int(n: i128, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "{n}");
}

/// A JSON string in JCS form (with its quotes).
pub(crate) fn write_string(s: &str, out: &mut String) {
    out.push('"');
    write_string_body(s, out);
    out.push('"');
}

/// The escaped content of a JCS string, without the quotes.
pub(crate) fn write_string_body(s: &str, out: &mut String) {
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        if let Some(e) = esc {
            out.push_str(&s[start..i]);
            out.push_str(e);
            start = i + c.len_utf8();
        } else if (c as u32) < 0x20 {
            out.push_str(&s[start..i]);
            out.push_str(&format!("\\u{:04x}", c as u32));
            start = i + c.len_utf8();
        }
    }
    out.push_str(&s[start..]);
}

/// ECMAScript `Number::toString(x)` for a finite double (ECMA-262 §6.1.6.1.20), which is
/// what JCS prescribes. The shortest round-trip digits come from Rust's `{:e}` formatting.
fn write_number(x: f64, out: &mut String) {
    if x == 0.0 {
        // covers -0
        out.push('0');
        return;
    }
    if !x.is_finite() {
        // unreachable for serde_json values; never emit invalid JSON
        out.push_str("null");
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    let sci = format!("{:e}", x.abs()); // e.g. "1.2345e-7", "5e0"
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32; // number of significant digits
    let n = exp + 1; // position of the decimal point relative to the digits
    if k <= n && n <= 21 {
        out.push_str(&digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        let e = n - 1;
        if e >= 0 {
            out.push('+');
        }
        out.push_str(&e.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(x: f64) -> String {
        let mut s = String::new();
        write_number(x, &mut s);
        s
    }

    #[test]
    #[allow(clippy::excessive_precision)]
    fn numbers_in_ecmascript_form() {
        // RFC 8785 Appendix B samples and friends
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(-1.0), "-1");
        assert_eq!(num(7.0), "7");
        assert_eq!(num(1e21), "1e+21");
        assert_eq!(num(1e20), "100000000000000000000");
        assert_eq!(num(123456789012345680000.0), "123456789012345680000");
        assert_eq!(num(9007199254740992.0), "9007199254740992");
        assert_eq!(num(9007199254740994.0), "9007199254740994");
        assert_eq!(num(0.1), "0.1");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(0.000001), "0.000001");
        assert_eq!(num(1e-7), "1e-7");
        assert_eq!(num(-1.5e-7), "-1.5e-7");
        assert_eq!(num(4.5), "4.5");
        assert_eq!(num(2e-3), "0.002");
        assert_eq!(num(5e-324), "5e-324");
        assert_eq!(num(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(num(333333333.33333329), "333333333.3333333");
        assert_eq!(num(1e23), "1e+23");
        assert_eq!(num(295147905179352830000.0), "295147905179352830000");
    }

    #[test]
    fn objects_sorted_by_utf16_and_strings_escaped() {
        // RFC 8785 §3.2.3: "\ufb33" sorts after "\ud83d\ude00" (😀) in UTF-16 although it
        // comes first in UTF-8 / code point order.
        let v = json!({"\u{fb33}": 1, "\u{1f600}": 2, "\r": 3, "1": 4, "\u{80}": 5, "a": 6, "\u{20ac}": 7});
        assert_eq!(
            to_canonical_string(&v),
            "{\"\\r\":3,\"1\":4,\"a\":6,\"\u{80}\":5,\"\u{20ac}\":7,\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
        let s = json!("\u{0}\u{1f}\"\\/\u{7f}\u{2028}é\t\n\u{8}\u{c}");
        assert_eq!(
            to_canonical_string(&s),
            "\"\\u0000\\u001f\\\"\\\\/\u{7f}\u{2028}é\\t\\n\\b\\f\""
        );
        assert_eq!(
            to_canonical_string(&json!({"b": [1, true, null, {"z": "y", "a": []}], "a": {}})),
            r#"{"a":{},"b":[1,true,null,{"a":[],"z":"y"}]}"#
        );
    }

    #[test]
    fn big_integers_become_doubles() {
        let v: Value = serde_json::from_str(
            "[18446744073709551615, -9223372036854775808, 10000000000000000000000]",
        )
        .unwrap();
        assert_eq!(
            to_canonical_string(&v),
            "[18446744073709552000,-9223372036854776000,1e+22]"
        );
    }
}
