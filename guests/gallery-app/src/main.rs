//! The gallery demo's application: the root nanoprocess. It is granted the photos
//! (as `/photos`) and imports four dependencies, each in a nanoprocess of its own
//! with its own grants: a thumbnailer, an id generator, a compromised analytics
//! package that tries to steal secrets, and a metadata reader that is granted nothing
//! and is lent one open photo for one call.
//!
//! The output is stable line by line, except for the random ids.

wit_bindgen::generate!({
    // The WASI packages first: gallery.wit uses their types (in `metadata`).
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/gallery.wit",
    ],
    world: "example:gallery/app",
    // The WASI types are wasip2's, so a descriptor opened with wasip2 can be lent.
    with: {
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
        "wasi:filesystem/types@0.2.12": wasip2::filesystem::types,
    },
});

use std::process::ExitCode;

use example::gallery::{analytics, ids, metadata, thumbnails};
use wasip2::filesystem::preopens;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

const PHOTOS: &str = "/photos";

fn main() -> ExitCode {
    let title = std::env::var("GALLERY_TITLE").unwrap_or_else(|_| "Gallery".to_owned());
    println!("== {title} ==");

    let names = match photo_names() {
        Ok(names) => names,
        Err(e) => {
            println!("cannot list {PHOTOS}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{} photos in {PHOTOS}", names.len());

    let mut thumbnails_made = 0;
    let mut later_attempts = 0;
    let mut later_successes = 0;
    for (index, name) in names.iter().enumerate() {
        println!();
        println!("[{name}]");
        let image = match std::fs::read(format!("{PHOTOS}/{name}")) {
            Ok(image) => image,
            Err(e) => {
                println!("cannot read {PHOTOS}/{name}: {e}");
                continue;
            }
        };

        match thumbnails::make(name, &image) {
            Ok(description) => {
                thumbnails_made += 1;
                println!("thumbnail: {description}");
            }
            Err(e) => println!("thumbnail failed: {e}"),
        }

        println!("id: {}", ids::new_id());

        // The analytics package reports what it tried; the demo shows it once in full
        // and afterwards only counts, since it tries the same things on every call.
        let probes = analytics::record_view(name);
        if index == 0 {
            println!("The analytics dependency (granted nothing) tried, on its first call:");
            for probe in &probes {
                println!("  analytics tried {}: {}", probe.attempt, probe.outcome);
            }
        } else {
            later_attempts += probes.len();
            later_successes += probes
                .iter()
                .filter(|probe| probe.outcome.starts_with("SUCCEEDED"))
                .count();
        }
    }

    if names.len() > 1 {
        println!();
        println!(
            "On its later calls the analytics dependency tried {later_attempts} more things; \
             {later_successes} succeeded."
        );
    }

    if let Some(name) = names.first() {
        println!();
        lend_a_photo(name);
    }

    println!();
    match analytics::summary() {
        Ok(summary) => println!("analytics summary: {summary}"),
        Err(e) => println!("analytics summary failed: {e}"),
    }

    println!("done: {} photos, {thumbnails_made} thumbnails", names.len());
    ExitCode::SUCCESS
}

/// The `.pgm` files in the photos directory, sorted so the output is stable.
fn photo_names() -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(PHOTOS)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".pgm") && entry.file_type()?.is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Lends one open photo to the metadata dependency, which holds no grant at all, for
/// one call; then lets it try to read the photo again after that call.
fn lend_a_photo(name: &str) {
    println!("[metadata of {name}]");
    let photo = match open_photo(name) {
        Ok(photo) => photo,
        Err(e) => {
            println!("cannot open {PHOTOS}/{name}: {e}");
            return;
        }
    };
    match metadata::describe(&photo) {
        Ok(description) => println!(
            "The metadata dependency (granted nothing) was lent {name} for one call: {description}"
        ),
        Err(e) => println!("The metadata dependency could not describe {name}: {e}"),
    }
    match metadata::peek_again() {
        Ok(text) => println!("After that call it read {name} again: SUCCEEDED: {text}"),
        Err(e) => println!("After that call it tried to read {name} again: refused: {e}"),
    }
}

/// Opens a photo read-only through the preopened photos directory, as a descriptor
/// that can be lent to another nanoprocess.
fn open_photo(name: &str) -> Result<Descriptor, String> {
    let (dir, _) = preopens::get_directories()
        .into_iter()
        .find(|(_, path)| path == PHOTOS)
        .ok_or_else(|| format!("{PHOTOS} is not granted"))?;
    dir.open_at(
        PathFlags::empty(),
        name,
        OpenFlags::empty(),
        DescriptorFlags::READ,
    )
    .map_err(|e| e.to_string())
}
