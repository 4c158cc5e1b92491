//! Manifest errors shown as rustc shows compile errors: the first line as it has
//! always been (`error: FILE:LINE:COL: message`, which editors and grep read), then
//! the manifest's line with what the error is about underlined, then the help.
//!
//! They are drawn by `annotate-snippets`, the crate rustc itself renders its
//! errors with, so the layout is the one Rust users read every day. It renders to
//! a string, plain or styled as asked, and brings no terminal library with it
//! (`codespan-reporting` needs `termcolor`; `miette` is a framework for error
//! types, more than the one function needed here).

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use nanoproc_runtime::manifest::{Location, ManifestError, ManifestErrors};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::ops::Range;
use std::path::PathBuf;

/// Whether what nanoproc writes to stderr may be coloured: only on a terminal,
/// and not when the user asked for none (`NO_COLOR`, https://no-color.org, or a
/// terminal that says it is dumb).
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Every error, each with the line of the manifest it is about where that line
/// can be shown, separated by blank lines; no newline at the end.
pub fn render(errors: &ManifestErrors, colour: bool) -> String {
    let renderer = if colour {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    // Each manifest is read again here, once: the runtime keeps no source text in
    // its errors. A file changed since the check only loses its excerpts (see
    // `Excerpt::of`).
    let mut sources: HashMap<PathBuf, Option<String>> = HashMap::new();
    let mut out = String::new();
    let mut after_excerpt = false;
    for (i, error) in errors.0.iter().enumerate() {
        let excerpt = error.location.as_ref().and_then(|at| {
            let source = sources
                .entry(at.file.clone())
                .or_insert_with(|| std::fs::read_to_string(&at.file).ok());
            Excerpt::of(source.as_deref()?, at)
        });
        // A blank line next to an excerpt, as rustc separates its errors; errors
        // without one follow each other line by line, as they always have.
        if i > 0 {
            out.push_str(if after_excerpt || excerpt.is_some() {
                "\n\n"
            } else {
                "\n"
            });
        }
        after_excerpt = excerpt.is_some();
        match excerpt {
            Some(excerpt) => out.push_str(&render_with_excerpt(&renderer, error, &excerpt)),
            // As errors have always been printed: `error: FILE:LINE:COL: message`
            // and an indented help line.
            None => out.push_str(&escaped(&format!("error: {error}"))),
        }
    }
    out
}

fn render_with_excerpt(renderer: &Renderer, error: &ManifestError, excerpt: &Excerpt) -> String {
    let title = match &error.location {
        Some(at) => escaped(&format!("{at}: {}", error.message)),
        None => escaped(&error.message),
    };
    let help = error.help.as_deref().map(escaped);
    let mut group = Level::ERROR.primary_title(&title).element(
        Snippet::source(&excerpt.text)
            .line_start(excerpt.line)
            .annotation(AnnotationKind::Primary.span(excerpt.underline.clone())),
    );
    if let Some(help) = &help {
        group = group.element(Level::HELP.message(help));
    }
    renderer.render(&[group])
}

/// One line of a manifest, made safe to print, and the bytes of it to underline.
struct Excerpt {
    text: String,
    /// 1-based.
    line: usize,
    underline: Range<usize>,
}

impl Excerpt {
    /// The line `at` is on, underlined from its column to the end of its span (or
    /// under one character, where only the point is known); a span over several
    /// lines is underlined to the end of its first. `None` when the file no longer
    /// has that line and column (it changed since it was checked): the error is
    /// then printed without an excerpt rather than under the wrong text.
    fn of(source: &str, at: &Location) -> Option<Excerpt> {
        let line_start = if at.line == 1 {
            0
        } else {
            source
                .match_indices('\n')
                .nth(at.line.checked_sub(2)?)
                .map(|(i, _)| i + 1)?
        };
        let rest = &source[line_start..];
        let line = rest.split('\n').next().unwrap_or_default();
        let line = line.strip_suffix('\r').unwrap_or(line);
        // The column counts characters, from 1; one past the end is the end.
        let start = match line.char_indices().nth(at.column.checked_sub(1)?) {
            Some((i, _)) => i,
            None if line.chars().count() + 1 == at.column => line.len(),
            None => return None,
        };
        let spanned_end = at.span.as_ref().and_then(|span| {
            // The span is trusted only if it starts where the line and column say.
            (span.start == line_start + start).then(|| span.end.saturating_sub(line_start))
        });
        let one_char = line[start..].chars().next().map_or(0, char::len_utf8);
        let end = match spanned_end {
            Some(end) if end > start => end.min(line.len()),
            _ => start + one_char,
        };
        let end = if line.is_char_boundary(end) {
            end
        } else {
            start + one_char
        };
        // Control characters are escaped, and the underline moved with the text.
        let mut text = String::with_capacity(line.len());
        let mut underline = 0..0;
        for (i, c) in line.char_indices() {
            if i == start {
                underline.start = text.len();
            }
            if i == end {
                underline.end = text.len();
            }
            push_escaped(&mut text, c);
        }
        if start == line.len() {
            underline.start = text.len();
        }
        if end == line.len() {
            underline.end = text.len();
        }
        Some(Excerpt {
            text,
            line: at.line,
            underline,
        })
    }
}

/// `text` with control characters escaped but for newlines and tabs, and the
/// characters that reorder or hide text (bidirectional controls, zero-width
/// characters, the BOM): a manifest error repeats what the manifest says (names,
/// paths), and a manifest from elsewhere must not be able to drive the terminal
/// or make its line read as something else.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push(c),
        c if c.is_control() || nanoproc_runtime::caps::is_invisible(c) => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32))
        }
        c => out.push(c),
    }
}

/// Serialised JSON with the characters serde_json leaves as they are but a
/// terminal acts on or hides escaped as `\uXXXX`: C1 controls (U+0080 to U+009F,
/// such as U+009B, a one-byte CSI) and what [`nanoproc_runtime::caps::is_invisible`]
/// names (a right-to-left override, a zero-width space). `--json` output is read
/// by tools and by people alike. Outside its strings JSON is ASCII, so each such
/// character is in a string, where its escape is the same character: the JSON
/// means what it meant.
pub fn json_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if ('\u{80}'..='\u{9f}').contains(&c) || nanoproc_runtime::caps::is_invisible(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn at(source: &str, needle: &str, len: usize) -> Location {
        let start = source.find(needle).unwrap();
        Location::from_span(Path::new("m.toml"), source, &(start..start + len))
    }

    fn underlined(x: &Excerpt) -> &str {
        &x.text[x.underline.clone()]
    }

    #[test]
    fn the_span_is_underlined_on_its_line() {
        let source = "[app]\nroot = \"app\"\non-failure = \"crash\"\n";
        let x = Excerpt::of(source, &at(source, "\"crash\"", 7)).unwrap();
        assert_eq!((x.line, x.text.as_str()), (3, "on-failure = \"crash\""));
        assert_eq!(underlined(&x), "\"crash\"");
    }

    #[test]
    fn a_span_over_lines_is_underlined_to_the_end_of_its_first() {
        let source = "deps = { a = 1,\n  b = 2 }\n";
        let x = Excerpt::of(source, &at(source, "{", source.len() - 8)).unwrap();
        assert_eq!(underlined(&x), "{ a = 1,");
    }

    #[test]
    fn a_point_is_one_character_and_multi_byte_text_is_counted_in_characters() {
        let source = "name = \"naïve 🦀\" x\n";
        let mut loc = at(source, "x\n", 0);
        loc.span = None;
        let x = Excerpt::of(source, &loc).unwrap();
        assert_eq!(underlined(&x), "x");
        let x = Excerpt::of(source, &at(source, "🦀", 4)).unwrap();
        assert_eq!(underlined(&x), "🦀");
    }

    #[test]
    fn a_location_the_file_no_longer_has_is_not_excerpted() {
        let source = "a = 1\n";
        let mut loc = at(source, "1", 1);
        loc.line = 7;
        assert!(Excerpt::of(source, &loc).is_none());
        let mut loc = at(source, "1", 1);
        loc.column = 40;
        assert!(Excerpt::of(source, &loc).is_none());
    }

    #[test]
    fn bidi_and_zero_width_characters_are_escaped_in_every_part() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nanoproc.toml");
        let name = "a\u{202e}b\u{200b}c\u{9b}d";
        let source = format!("[app]\nroot = \"{name}\"\n");
        std::fs::write(&file, &source).unwrap();
        let start = source.find('"').unwrap();
        let error = ManifestError::new(
            Some(Location::from_span(
                &file,
                &source,
                &(start..source.len() - 1),
            )),
            format!("the root `{name}` is not declared"),
        )
        .help(format!("declare [nanoprocess.{name}]"));
        let unplaced = ManifestError {
            location: None,
            ..error.clone()
        };
        // With its excerpt: the title, the manifest's line and the help; without:
        // the message and the help.
        for (error, parts) in [(error, 3), (unplaced, 2)] {
            let text = render(&ManifestErrors(vec![error]), false);
            for c in ['\u{202e}', '\u{200b}', '\u{9b}'] {
                assert!(!text.contains(c), "{c:?} in {text}");
            }
            assert_eq!(
                text.matches("a\\u{202e}b\\u{200b}c\\u{9b}d").count(),
                parts,
                "{text}"
            );
        }
    }

    #[test]
    fn json_keeps_its_meaning_with_c1_and_invisible_characters_escaped() {
        let value = serde_json::json!({
            "name\u{202e}": ["a\u{202e}b\u{200b}c\u{9b}[2Jd\u{feff}\u{1b}é🦀\u{85}"],
        });
        let text = json_escaped(&format!("{value:#}"));
        for c in [
            '\u{202e}', '\u{200b}', '\u{9b}', '\u{feff}', '\u{85}', '\u{1b}',
        ] {
            assert!(!text.contains(c), "{c:?} in {text}");
        }
        assert!(
            text.contains("\\u202e") && text.contains("\\u009b"),
            "{text}"
        );
        assert!(text.contains("é🦀"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn control_characters_are_escaped_and_the_underline_follows() {
        let source = "a = \"\u{1b}[2J\" # b\n";
        let x = Excerpt::of(source, &at(source, "b\n", 1)).unwrap();
        assert!(!x.text.contains('\u{1b}'), "{:?}", x.text);
        assert_eq!(underlined(&x), "b");
    }

    #[test]
    fn the_first_line_is_the_location_and_message_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nanoproc.toml");
        let source = "[app]\nroot = 7\n";
        std::fs::write(&file, source).unwrap();
        let start = source.find('7').unwrap();
        let error = ManifestError::new(
            Some(Location::from_span(&file, source, &(start..start + 1))),
            "root must be a string",
        )
        .help("write root = \"NAME\"");
        let text = render(&ManifestErrors(vec![error.clone()]), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("error: {}:2:8: root must be a string", file.display())
        );
        assert!(lines.contains(&"2 | root = 7"), "{text}");
        assert!(lines.contains(&"  |        ^"), "{text}");
        assert!(lines.contains(&"  = help: write root = \"NAME\""), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "plain means no escape codes: {text}"
        );
        assert!(render(&ManifestErrors(vec![error]), true).contains('\u{1b}'));

        // Without a location, or without the file: as errors always printed.
        let plain = ManifestError::new(None, "cannot read manifest x.toml").help("look");
        assert_eq!(
            render(&ManifestErrors(vec![plain]), false),
            "error: cannot read manifest x.toml\n  help: look"
        );
    }
}
