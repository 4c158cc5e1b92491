//! The Rust plugin of examples/plugin-host (wit/plugins.wit, world `text-plugin`):
//! typographic quotes. Straight quotes become curly ones, `--` an en dash and
//! `...` an ellipsis.
//!
//! It keeps a running word count in the host's key-value store, under `rust/`,
//! the prefix its manifest grants it, and notes when it last ran, read from the
//! wall clock (the example grants a frozen one). A refused store call is not
//! fatal: the text is still transformed.

wit_bindgen::generate!({ path: "../wit/plugins.wit", world: "text-plugin" });

use exports::nanoproc::plugins::transform::Guest;
use nanoproc::plugins::kv;

/// The keys this plugin keeps, all under the prefix it is granted.
const WORDS: &str = "rust/words";
const LAST_RUN: &str = "rust/last-run";

struct Quotes;

impl Guest for Quotes {
    fn transform(input: String) -> String {
        let words = input.split_whitespace().count() as u64;
        // An absent or unreadable count starts from zero; a refused one is left alone.
        if let Ok(before) = kv::get(WORDS) {
            let before: u64 = before.and_then(|n| n.parse().ok()).unwrap_or(0);
            let _ = kv::set(WORDS, &(before + words).to_string());
        }
        let now = wasip2::clocks::wall_clock::now();
        let _ = kv::set(LAST_RUN, &now.seconds.to_string());
        smarten(&input)
    }
}

/// Straight quotes to curly ones: a quote opens at the start, after a space, an
/// opening bracket or a dash, and closes otherwise (so a single quote inside a word
/// is an apostrophe).
fn smarten(text: &str) -> String {
    let text = text.replace("...", "\u{2026}").replace("--", "\u{2013}");
    let mut out = String::with_capacity(text.len() + 8);
    let mut previous: Option<char> = None;
    for c in text.chars() {
        let opens = previous.is_none_or(|p| p.is_whitespace() || "([{\u{2013}".contains(p));
        match c {
            '"' if opens => out.push('\u{201c}'),
            '"' => out.push('\u{201d}'),
            '\'' if opens => out.push('\u{2018}'),
            '\'' => out.push('\u{2019}'),
            _ => out.push(c),
        }
        previous = Some(c);
    }
    out
}

export!(Quotes);
