//! The demo application (examples/gallery), run exactly as `cargo xtask demo` runs
//! it, in a copy so that the repository's photos stay as they are.

use crate::common;
use common::*;

#[test]
fn the_gallery_demo_tells_the_story_of_a_compromised_dependency() {
    let scene = Scene::gallery();
    // What the compromised dependency would love to read: a key beside the photos
    // (outside every grant) and a secret in the user's environment.
    scene.file("home/.ssh/id_rsa", "-----BEGIN FAKE KEY-----");
    let before_home = snapshot(&scene.path("home"));
    let before_photos: Vec<_> = snapshot(&scene.path("photos"))
        .into_iter()
        .filter(|(p, _)| !p.starts_with(scene.path("photos/thumbs")))
        .collect();

    let audit = scene.path("audit.jsonl");
    let run = nanoproc_env(
        &[
            "run",
            "--audit",
            &audit.display().to_string(),
            &scene.path("nanoproc.toml").display().to_string(),
        ],
        &[
            ("GALLERY_TITLE", "Holiday photos"),
            ("AWS_SECRET_ACCESS_KEY", "demo-secret-that-must-not-leak"),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let out = &run.stdout;

    // The application did its job, through the dependencies it was given.
    assert!(out.contains("== Holiday photos =="), "{out}");
    for (photo, dims) in [
        ("city.pgm", "5x3 -> 2x1"),
        ("forest.pgm", "6x6 -> 3x3"),
        ("sunset.pgm", "8x6 -> 4x3"),
    ] {
        assert!(
            out.contains(&format!(
                "thumbnail: {photo}: {dims}, written to /out/{photo}"
            )),
            "{out}"
        );
        assert!(
            scene.path("photos/thumbs").join(photo).is_file(),
            "thumbnail {photo} missing"
        );
    }
    let ids: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
    assert_eq!(ids.len(), 3, "{out}");
    assert!(
        ids.iter()
            .all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())),
        "{ids:?}"
    );
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "random ids: {ids:?}");
    assert!(out.contains("done: 3 photos, 3 thumbnails"), "{out}");

    // Every attempt of the compromised dependency was refused...
    for attempt in [
        "read /home/user/.ssh/id_rsa",
        "read ../../.ssh/id_rsa",
        "list /photos",
        "write /photos/pwned.txt",
        "connect 127.0.0.1:4444",
        "resolve exfil.example.com",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("analytics tried {attempt}:")))
            .unwrap_or_else(|| panic!("no report of {attempt}:\n{out}"));
        assert!(line.contains("refused"), "{line}");
    }
    assert!(
        out.contains("analytics tried read env AWS_SECRET_ACCESS_KEY: refused: not present"),
        "{out}"
    );
    assert!(out.contains("0 succeeded"), "{out}");
    assert!(
        !out.contains("SUCCEEDED") && !out.contains("demo-secret"),
        "{out}"
    );
    // ...its clock access trapped it, and the application was told, by name.
    assert!(
        out.contains("analytics summary failed: nanoprocess `app/analytics` failed in example:gallery/analytics#summary: nanoprocess `app/analytics` was refused capability `wall-clock`"),
        "{out}"
    );
    // The metadata dependency, granted nothing, read the one photo it was lent, for
    // the duration of that call only.
    assert!(
        out.contains(
            "The metadata dependency (granted nothing) was lent city.pgm for one call: PGM 5x3, maxval 255"
        ),
        "{out}"
    );
    let again = out
        .lines()
        .find(|l| l.starts_with("After that call it tried to read city.pgm again: refused: "))
        .unwrap_or_else(|| panic!("no report of the second read:\n{out}"));
    assert!(
        again.contains("nanoprocess `app/meta` failed in example:gallery/metadata#peek-again"),
        "{again}"
    );
    // The cause is wasmtime's: the handle number means nothing in meta's table now.
    assert!(
        out.contains("handle index"),
        "the cause is the dead handle: {out}"
    );
    assert!(!out.contains("still readable after the call"), "{out}");

    // nanoproc's own account names each refusal.
    assert!(run.stderr.contains("app/analytics: network 127.0.0.1:4444 (wasi:sockets/tcp.connect): network is not granted"), "{run:?}");
    assert!(run.stderr.contains("app/analytics: network exfil.example.com (wasi:sockets/ip-name-lookup.resolve-addresses)"), "{run:?}");
    assert!(
        run.stderr
            .contains("app/analytics: wall-clock (wasi:clocks/wall-clock.now): not granted"),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains("app/thumbnailer") && !run.stderr.contains("app/idgen"),
        "{run:?}"
    );

    // The audit log shows the compromised dependency's attempts, and the other
    // dependencies' legitimate uses.
    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let has = |who: &str, what: &str, decision: &str| {
        lines.iter().any(|l| {
            l.contains(&format!("\"nanoprocess\":\"{who}\""))
                && l.contains(what)
                && l.contains(&format!("\"decision\":\"{decision}\""))
        })
    };
    assert!(
        has("app/analytics", "\"target\":\"127.0.0.1:4444\"", "refused"),
        "{log}"
    );
    assert!(
        has(
            "app/analytics",
            "\"target\":\"exfil.example.com\"",
            "refused"
        ),
        "{log}"
    );
    assert!(
        has("app/analytics", "\"family\":\"wall-clock\"", "refused"),
        "{log}"
    );
    assert!(
        has("app/thumbnailer", "\"target\":\"/out/city.pgm\"", "allowed"),
        "{log}"
    );
    assert!(
        has("app/idgen", "\"family\":\"random\"", "allowed"),
        "{log}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\"app/thumbnailer\"") && l.contains("refused")),
        "{log}"
    );
    // The lent photo: one transfer, from the app to app/meta, of that descriptor.
    let lent: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("\"family\":\"handle\""))
        .collect();
    assert_eq!(lent.len(), 1, "{log}");
    let lent = lent[0];
    assert!(
        lent.contains("\"nanoprocess\":\"app\"")
            && lent.contains("\"operation\":\"borrow\"")
            && lent.contains("\"decision\":\"allowed\"")
            && lent.contains("wasi:filesystem/types#descriptor")
            && lent.contains("/photos/city.pgm")
            && lent.contains("app/meta"),
        "{lent}"
    );

    // The user's files outside the grants are untouched, and nothing was planted.
    assert_eq!(before_home, snapshot(&scene.path("home")));
    let after_photos: Vec<_> = snapshot(&scene.path("photos"))
        .into_iter()
        .filter(|(p, _)| !p.starts_with(scene.path("photos/thumbs")))
        .collect();
    assert_eq!(before_photos, after_photos);
    assert!(!scene.path("photos/pwned.txt").exists());
}

#[test]
fn the_demo_manifest_checks() {
    xtask::prepare_demo();
    let manifest = xtask::repo_root().join("examples/gallery/nanoproc.toml");
    let run = check(&manifest);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("app/analytics"), "{run:?}");
    assert!(run.stdout.contains("/out (read-write) = host "), "{run:?}");
    assert!(run.stdout.contains("app/meta"), "{run:?}");
    assert!(
        run.stdout
            .contains("serves  example:gallery/metadata to app"),
        "{run:?}"
    );
    assert!(run.stdout.contains("ok: 5 nanoprocesses"), "{run:?}");
}
