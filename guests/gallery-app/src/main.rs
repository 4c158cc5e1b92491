//! The gallery demo's application: the root nanoprocess. It is granted the photos
//! (as `/photos`) and imports three dependencies, each in a nanoprocess of its own
//! with its own grants: a thumbnailer, an id generator and a compromised analytics
//! package that tries to steal secrets.
//!
//! The output is stable line by line, except for the random ids.

wit_bindgen::generate!({ path: "../wit/gallery.wit", world: "app" });

use std::process::ExitCode;

use example::gallery::{analytics, ids, thumbnails};

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
