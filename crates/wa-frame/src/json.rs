//! A nesting check that runs before `serde_json`, so the depth limit is ours and is reported as a
//! typed error with the offset where it was crossed.

/// Returns the byte offset of the first `[` or `{` that opens a level deeper than `limit`, or
/// `None` if the text stays within it. Brackets inside strings do not count; the text need not
/// be valid JSON (the parser that runs next reports that).
pub(crate) fn too_deep_at(text: &str, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (at, &byte) in text.as_bytes().iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::too_deep_at;

    #[test]
    fn counts_nesting_outside_strings() {
        assert_eq!(too_deep_at("[[[]]]", 3), None);
        assert_eq!(too_deep_at("[[[]]]", 2), Some(2));
        assert_eq!(too_deep_at(r#"["[[[[", {"a": "\"[[["}]"#, 2), None);
        assert_eq!(too_deep_at(r#"[{"a": [1]}]"#, 2), Some(7));
        assert_eq!(too_deep_at("[][][][]", 1), None);
        assert_eq!(too_deep_at("", 0), None);
        assert_eq!(too_deep_at("1", 0), None);
        assert_eq!(too_deep_at("[", 0), Some(0));
    }
}
