//! Entry points for `cargo fuzz` (built only with `--cfg fuzzing`): the input checks that guard
//! the wire, fed arbitrary bytes.

use crate::checks::{check_header_line, check_method, check_url, framing_checked};

fn has_line_break_or_nul(s: &str) -> bool {
    s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

pub fn request_checks(data: &[u8]) {
    let _ = crate::sink::content_length(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if check_url(text).is_ok() {
        assert!(
            !has_line_break_or_nul(text) && !text.contains(' '),
            "accepted URL {text:?}"
        );
        let lower = text.to_ascii_lowercase();
        assert!(lower.starts_with("http://") || lower.starts_with("https://"));
    }
    if check_method(text).is_ok() {
        assert!(!has_line_break_or_nul(text) && !text.contains(' '));
    }
    if check_header_line(text).is_ok() {
        assert!(!has_line_break_or_nul(text), "accepted header {text:?}");
    }
    let lines: Vec<String> = text.split('\u{1}').map(str::to_owned).collect();
    if let Ok(kept) = framing_checked(lines) {
        let name = |l: &String| {
            l.split_once(':')
                .map(|(n, _)| n.trim().to_ascii_lowercase())
        };
        assert!(kept
            .iter()
            .all(|l| name(l).as_deref() != Some("content-length")));
    }
}
