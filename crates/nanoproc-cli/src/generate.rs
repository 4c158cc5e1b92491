//! `nanoproc completions SHELL` and `nanoproc man [COMMAND]`: generated from the
//! command line's own definition when asked, so they cannot fall out of date.
//!
//! The man page is printed, not installed: `cargo install` leaves a binary and
//! nothing else, so the binary is what can make it
//! (`nanoproc man > ~/.local/share/man/man1/nanoproc.1`, or `nanoproc man | man -l -`).
//! One page per command, as git has: `nanoproc(1)` lists the commands, and
//! `nanoproc man run` prints `nanoproc-run(1)` with every flag of `run`.

use crate::{Cli, print_out};
use clap::CommandFactory;
use std::process::ExitCode;

/// The completion script for `shell`, on stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut cli = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, "nanoproc", &mut script);
    print_out(&String::from_utf8_lossy(&script));
    ExitCode::SUCCESS
}

/// The man page of nanoproc, or of one of its commands, as roff on stdout.
pub fn man(command: Option<&str>) -> ExitCode {
    let mut cli = Cli::command();
    // Global flags (`-v`) reach the commands' definitions only once built.
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => match cli.find_subcommand(name) {
            // Named as its own page is: `nanoproc-run`. clap takes a static name
            // (without its `string` feature); this process prints one page and ends.
            Some(sub) => sub
                .clone()
                .name(&*Box::leak(format!("nanoproc-{name}").into_boxed_str())),
            None => {
                let known: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!(
                    "nanoproc: man: no command `{name}`; the commands are {}",
                    known.join(", ")
                );
                return ExitCode::from(2);
            }
        },
    };
    let mut roff = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut roff) {
        eprintln!("nanoproc: man: {e}");
        return ExitCode::from(1);
    }
    print_out(&String::from_utf8_lossy(&roff));
    ExitCode::SUCCESS
}
