//! A FHIR narrative (XHTML) as the plain text a reader sees: inline markup (`<b>`, `<span>`,
//! `<a>`…) disappears without a trace, so a name split by markup stays one word for the
//! de-identifier; block elements and line breaks become line breaks, table cells spaces;
//! comments are dropped; character references (`&#233;`, `&#xE9;`, the XML five and `&nbsp;`)
//! are decoded. Attributes are never text.

/// Elements that end a line (or a cell) when rendered.
const BLOCKS: &[&str] = &[
    "address",
    "blockquote",
    "br",
    "caption",
    "dd",
    "div",
    "dl",
    "dt",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "tr",
    "ul",
];

/// The text of `div`.
pub(super) fn to_text(div: &str) -> String {
    let mut out = String::with_capacity(div.len());
    let mut rest = div;
    while let Some(start) = rest.find(['<', '&']) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
        } else if rest.starts_with('<') {
            let end = tag_end(rest);
            let name: String = rest[1..end]
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if matches!(name.as_str(), "td" | "th") {
                out.push(' ');
            } else if BLOCKS.contains(&name.as_str()) {
                out.push('\n');
            }
            rest = rest.get(end + 1..).unwrap_or("");
        } else {
            let (decoded, used) = entity(rest);
            out.push_str(&decoded);
            rest = &rest[used..];
        }
    }
    out.push_str(rest);
    out
}

/// The index of the `>` that closes the tag `text` starts with (quoted attribute values may
/// hold `>`), or the end of the text.
fn tag_end(text: &str) -> usize {
    let mut quote = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return i,
            _ => {}
        }
    }
    text.len()
}

/// The character a reference at the start of `text` stands for, and its length in bytes; an
/// `&` that starts no known reference stands for itself.
fn entity(text: &str) -> (String, usize) {
    let literal = ("&".to_string(), 1);
    let Some(end) = text[1..].find(';').map(|i| i + 1).filter(|&i| i <= 12) else {
        return literal;
    };
    let name = &text[1..end];
    let decoded = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let number = match name.strip_prefix('#') {
                Some(hex) if hex.starts_with(['x', 'X']) => u32::from_str_radix(&hex[1..], 16).ok(),
                Some(decimal) => decimal.parse().ok(),
                None => None,
            };
            number.and_then(char::from_u32)
        }
    };
    match decoded {
        Some(c) => (c.to_string(), end + 1),
        None => literal,
    }
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn markup_goes_and_words_stay_whole() {
        assert_eq!(
            to_text("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Mme <b>Quatre</b>barbes &amp; fils</p></div>").trim(),
            "Mme Quatrebarbes & fils"
        );
        assert_eq!(
            to_text("<div>Z&#233;phyrine Z&#xE9;phyrine&nbsp;x &unknown; a & b</div>").trim(),
            "Zéphyrine Zéphyrine x &unknown; a & b"
        );
        assert_eq!(
            to_text("<div><p>one</p><p>two<br/>three</p><table><tr><td>a</td><td>b</td></tr></table></div>")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["one", "two", "three", "a", "b"]
        );
        assert!(to_text("<div><p>a</p><p>b</p></div>").contains("a\n"));
    }

    #[test]
    fn attributes_and_comments_are_not_text() {
        assert_eq!(
            to_text("<div><a href=\"x>y\" title='Dupont'>lien</a><!-- Dupont --></div>").trim(),
            "lien"
        );
        // Broken markup ends the text rather than leaking it.
        assert_eq!(to_text("<div>ok <span title=\"Dupont").trim(), "ok");
        assert_eq!(to_text("ok <!-- Dupont").trim(), "ok");
        assert_eq!(to_text("&#xFFFFFFFF; &#;").trim(), "&#xFFFFFFFF; &#;");
    }
}
