//! Text made safe for each output format.
//!
//! Every string a picture shows was chosen by someone other than nanoproc: node
//! and interface names by the manifest's author, audit targets (paths, host names)
//! by a guest that may be hostile. So each piece goes through two steps:
//!
//! 1. [`visible`]: characters that could hide or forge structure on screen (line
//!    breaks, other control characters, bidirectional overrides, zero-width
//!    characters, characters XML forbids) are written as `\n`, `\u{202e}`...: a name
//!    shows as one line, as what it is.
//! 2. The format's own escaping, so that no delimiter of the format survives raw:
//!    [`dot_quoted`], [`dot_html`], [`mermaid`], [`html`].

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is shown as an escape rather than as itself: control characters
/// (C0, DEL, C1), Unicode format characters that reorder or hide text (bidi
/// embeddings, overrides and isolates, zero-width spaces and joiners, the BOM),
/// line and paragraph separators, and the noncharacters U+FFFE and U+FFFF, which
/// XML (and so Graphviz's HTML-like labels) refuses.
fn shown_escaped(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}')
}

/// `text` with every character [`shown_escaped`] written as an escape (`\n`,
/// `\t`, `\r`, else `\u` and four hex digits, as JSON writes them: every such
/// character is in the Basic Multilingual Plane); borrowed when there is none.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(shown_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if shown_escaped(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max_chars` characters, ending with `…` when cut.
pub fn cut(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            Cow::Owned(format!("{}…", &text[..end]))
        }
    }
}

/// The contents of a DOT double-quoted string (without the quotes), for an
/// attribute Graphviz reads as an escString (`label`, `tooltip`): `"` and `\`
/// escaped, so the string cannot end early and no `\N`, `\G` or `\l` in a name is
/// taken as one of Graphviz's substitutions. [`visible`] has removed line breaks,
/// so no line continuation can form either.
pub fn dot_quoted(text: &str) -> String {
    let text = visible(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a Graphviz HTML-like label (`label=<...>`): the XML delimiters as
/// entities, so the label's `<`/`>` nesting, which ends the label, cannot be
/// closed or opened by a name, and brackets as character references.
/// [`visible`] has removed the characters XML refuses.
pub fn dot_html(text: &str) -> String {
    // Graphviz's HTML-label lexer refuses an element whose whole text is `]` (a
    // capability or name `]` made `dot` fail): brackets go as character
    // references, which it reads back as themselves.
    xml_text(&visible(text))
        .replace('[', "&#91;")
        .replace(']', "&#93;")
}

/// Text inside a Mermaid double-quoted label (`n0["..."]`, `-->|"..."|`).
///
/// Mermaid has no backslash escapes; it reads `#name;` and `#123;` as entities.
/// Escaped: `"` (ends the label), `#` (would start an entity: a name containing
/// `#quot;` must show as written), `&`, `<`, `>` (the label is rendered as HTML),
/// `` ` `` (a label starting with it is Markdown), `|` (edge labels), `%`, `{`,
/// `}` (a `%%{init: ...}%%` directive is looked for anywhere in the text and could
/// change the renderer's settings, its security level included), and `ﬂ` (U+FB02:
/// Mermaid's own entity marker, which it turns into `&` after rendering).
pub fn mermaid(text: &str) -> String {
    let text = visible(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            '|' => out.push_str("#124;"),
            '%' => out.push_str("#37;"),
            '{' => out.push_str("#123;"),
            '}' => out.push_str("#125;"),
            '\u{fb02}' => out.push_str("#64258;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for an HTML page, in element content or a double- or single-quoted
/// attribute value alike.
pub fn html(text: &str) -> String {
    xml_text(&visible(text))
}

fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_writes_line_breaks_and_hidden_characters_as_escapes() {
        assert_eq!(visible("plain/name"), "plain/name");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(visible("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(visible("\u{1b}[31m"), "\\u001b[31m");
        assert_eq!(visible("evil\u{202e}txt.exe"), "evil\\u202etxt.exe");
        assert_eq!(visible("zero\u{200b}width"), "zero\\u200bwidth");
        assert_eq!(visible("\u{fffe}\u{ffff}\u{85}"), "\\ufffe\\uffff\\u0085");
        // Ordinary non-ASCII text is shown as itself.
        assert_eq!(visible("photos/été/日本"), "photos/été/日本");
    }

    #[test]
    fn cut_keeps_whole_characters_and_marks_the_cut() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly10!", 10), "exactly10!");
        assert_eq!(cut("0123456789abc", 10), "012345678…");
        assert_eq!(cut("ééééééé", 4), "ééé…");
        assert_eq!(cut("abc", 0), "…");
    }

    #[test]
    fn dot_quoted_cannot_end_the_string_or_substitute() {
        assert_eq!(dot_quoted(r#"a"];x->y;["#), r#"a\"];x->y;["#);
        assert_eq!(dot_quoted(r"\N\G\l"), r"\\N\\G\\l");
        assert_eq!(dot_quoted("line\nbreak"), r"line\\nbreak");
        // A trailing backslash would otherwise escape the closing quote.
        assert_eq!(dot_quoted("ends\\"), r"ends\\");
    }

    #[test]
    fn dot_html_leaves_no_markup() {
        assert_eq!(
            dot_html("</TD></TR></TABLE>>]; n9 [label=\"x\"'"),
            "&lt;/TD&gt;&lt;/TR&gt;&lt;/TABLE&gt;&gt;&#93;; n9 &#91;label=&quot;x&quot;&#39;"
        );
        assert_eq!(dot_html("&amp;"), "&amp;amp;");
        assert_eq!(dot_html("nul\0"), "nul\\u0000");
        assert_eq!(dot_html("]"), "&#93;");
    }

    #[test]
    fn mermaid_uses_its_entities_and_defuses_directives() {
        assert_eq!(mermaid(r#"say "hi""#), "say #quot;hi#quot;");
        assert_eq!(mermaid("#quot;"), "#35;quot;");
        assert_eq!(
            mermaid("%%{init: {'securityLevel':'loose'}}%%"),
            "#37;#37;#123;init: #123;'securityLevel':'loose'#125;#125;#37;#37;"
        );
        assert_eq!(
            mermaid("<img src=x onerror=alert(1)>"),
            "#lt;img src=x onerror=alert(1)#gt;"
        );
        assert_eq!(mermaid("`md` a|b & c"), "#96;md#96; a#124;b #amp; c");
        assert_eq!(mermaid("ﬂ°lt¶ß"), "#64258;°lt¶ß");
        assert_eq!(mermaid("two\nlines"), "two\\nlines");
    }

    #[test]
    fn html_escapes_for_text_and_attributes() {
        assert_eq!(
            html("</script><script>alert('x')</script>"),
            "&lt;/script&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(html(r#"" onmouseover="x"#), "&quot; onmouseover=&quot;x");
    }
}
