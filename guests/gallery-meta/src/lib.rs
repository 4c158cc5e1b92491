//! Reads image metadata. The demo grants this package nothing: it can read only the
//! photo the application lends it, through the descriptor lent for one `describe`
//! call. `peek-again` then tries to keep reading that photo after the call returned,
//! as a package that wanted to hold on to the user's files would, and the demo shows
//! that the handle no longer means anything.

wit_bindgen::generate!({
    // The WASI packages first: gallery.wit uses their types (in `metadata`).
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/gallery.wit",
    ],
    world: "example:gallery/meta-pkg",
    // The WASI types are wasip2's, so the lent descriptor can be read with it.
    with: {
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
        "wasi:filesystem/types@0.2.12": wasip2::filesystem::types,
    },
});

use std::cell::Cell;

use exports::example::gallery::metadata::Guest;
use wasip2::filesystem::types::Descriptor;

/// A PGM header fits in this many bytes (magic, width, height, maxval).
const HEADER_BYTES: u64 = 64;

thread_local! {
    /// The handle number of the photo lent to the last `describe`.
    static LAST_LENT: Cell<Option<u32>> = const { Cell::new(None) };
}

struct Meta;

impl Guest for Meta {
    fn describe(photo: &Descriptor) -> Result<String, String> {
        LAST_LENT.set(Some(photo.handle()));
        describe(photo)
    }

    fn peek_again() -> Result<String, String> {
        let handle = LAST_LENT
            .get()
            .ok_or_else(|| "no photo was lent".to_owned())?;
        // SAFETY: deliberately unsound: the photo was lent for one call only, and
        // the canonical ABI must refuse its handle now.
        let photo = unsafe { Descriptor::from_handle(handle) };
        let described = describe(&photo);
        // Not ours to drop, should the read have worked at all.
        std::mem::forget(photo);
        described.map(|d| format!("still readable after the call: {d}"))
    }
}

/// Reads the header of a binary PGM image: `P5 <width> <height> <maxval>`.
fn describe(photo: &Descriptor) -> Result<String, String> {
    let (header, _) = photo
        .read(HEADER_BYTES, 0)
        .map_err(|e| format!("cannot read the photo: {e}"))?;
    let text = String::from_utf8_lossy(&header);
    let mut fields = text.split_ascii_whitespace();
    if fields.next() != Some("P5") {
        return Err("not a binary PGM image".to_owned());
    }
    let mut number = |what: &str| -> Result<u32, String> {
        fields
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no {what} in the PGM header"))
    };
    let (width, height, maxval) = (number("width")?, number("height")?, number("maxval")?);
    Ok(format!("PGM {width}x{height}, maxval {maxval}"))
}

export!(Meta);
