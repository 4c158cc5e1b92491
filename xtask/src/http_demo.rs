//! `cargo xtask http-demo`: the gallery behind an HTTP endpoint
//! (examples/http-gallery). Serves the tree with `nanoproc serve` on a free
//! loopback port, sends it what a user would (the index, a photo to make a
//! thumbnail of, a request that is not found), stops it with Ctrl-C as a user
//! would, and fails if any answer or the shutdown is not what the demo shows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the demo waits for anything: the server to listen (a cold build of
/// nanoproc is not counted: `cargo build` runs first), an answer, the shutdown.
const WAIT: Duration = Duration::from_secs(60);

/// A request (method, path, body) and what its answer must be (status, a text
/// its body contains).
type Exchange<'a> = (&'a str, &'a str, Option<&'a [u8]>, u16, &'a str);

pub fn run() -> ExitCode {
    let manifest = xtask::prepare_http_demo();
    let root = xtask::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "-q", "-p", "nanoproc-cli"])
        .status()
        .expect("running cargo build");
    if !built.success() {
        return ExitCode::FAILURE;
    }
    let audit = manifest.with_file_name("build").join("audit.jsonl");
    let mut server = Command::new(root.join("target/debug/nanoproc"))
        .current_dir(&root)
        .args(["serve", "--addr", "127.0.0.1:0", "--audit"])
        .arg(&audit)
        .arg(&manifest)
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nanoproc serve");

    // nanoproc's log, shown as it comes; the address it listens on, taken from it.
    let (addr_tx, addr_rx) = mpsc::channel();
    let log = server.stderr.take().expect("piped");
    let (log_tx, log_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(log).lines().map_while(Result::ok) {
            eprintln!("  | {line}");
            if let Some(addr) = line.split("listening on http://").nth(1) {
                let _ = addr_tx.send(addr.trim().to_string());
            }
            let _ = log_tx.send(line);
        }
    });
    let addr: SocketAddr = match addr_rx.recv_timeout(WAIT) {
        Ok(addr) => addr
            .parse()
            .expect("nanoproc prints the address it listens on"),
        Err(_) => {
            let _ = server.kill();
            let _ = server.wait();
            eprintln!("http-demo: nanoproc serve did not start listening");
            return ExitCode::FAILURE;
        }
    };
    println!("nanoproc serve is listening on http://{addr}\n");

    let photo = std::fs::read(root.join("examples/gallery/photos/city.pgm")).expect("the photo");
    let exchanges: [Exchange; 3] = [
        ("GET", "/", None, 200, "thumbnails over HTTP"),
        (
            "POST",
            "/thumb?name=city.pgm",
            Some(&photo),
            200,
            "city.pgm",
        ),
        ("GET", "/nothing-here", None, 404, "not found"),
    ];
    let mut ok = true;
    for (method, path, body, want_status, want_text) in exchanges {
        print!("{method} {path}");
        if let Some(body) = body {
            print!(" ({} bytes)", body.len());
        }
        match request(addr, method, path, body) {
            Ok((status, text)) => {
                println!(" -> {status}\n  {}", text.trim_end().replace('\n', "\n  "));
                if status != want_status || !text.contains(want_text) {
                    eprintln!("http-demo: expected {want_status} with {want_text:?}");
                    ok = false;
                }
            }
            Err(e) => {
                println!(" -> no answer: {e}");
                ok = false;
            }
        }
        println!();
    }

    // Ctrl-C, as a user stops it: in-flight requests finish, the report follows.
    let pid = server.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let status = wait(&mut server);
    let log: Vec<String> = log_rx.try_iter().collect();
    let refused = log
        .iter()
        .any(|l| l.contains("analytics") && l.contains("analytics.example.com"));
    if !refused {
        eprintln!("http-demo: nanoproc's log should name the analytics package's refused request");
        ok = false;
    }
    match status {
        Some(0) => {}
        other => {
            eprintln!("http-demo: nanoproc serve ended with {other:?} after Ctrl-C, not 0");
            ok = false;
        }
    }
    let thumb = manifest.with_file_name("thumbs").join("city.pgm");
    println!(
        "The thumbnail is in {}; every capability decision, with its request's id, in {}.",
        thumb.strip_prefix(&root).unwrap_or(&thumb).display(),
        audit.strip_prefix(&root).unwrap_or(&audit).display()
    );
    if !thumb.exists() {
        eprintln!("http-demo: no thumbnail was written");
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Waits for the server to end, at most [`WAIT`]; kills it after that.
fn wait(server: &mut std::process::Child) -> Option<i32> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            return status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = server.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request on its own connection: the status and the body as text.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT)?;
    stream.set_read_timeout(Some(WAIT))?;
    let body = body.unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}
