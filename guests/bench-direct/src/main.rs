//! The anchor of the cross-nanoprocess benchmark: `bench_direct <kind> <n>` makes the
//! same `n` calls as `bench-parent`, with the same loop (`bench-common`), but to
//! functions inside this component that do the child's work. Each is a real call
//! (`#[inline(never)]`), and an argument the child would receive as an owned value
//! (a string, a record) is copied here too, as the child's side of the boundary
//! would.

use bench_common::Api;
use std::hint::black_box;
use std::process::ExitCode;

#[derive(Clone)]
struct Leaf {
    id: u32,
    label: String,
    values: Vec<u32>,
}

#[derive(Clone)]
struct Rec {
    id: u64,
    name: String,
    tags: Vec<String>,
    leaves: Vec<Leaf>,
    matrix: Vec<Vec<u8>>,
}

struct Direct;

impl Api for Direct {
    type Rec = Rec;

    #[inline(never)]
    fn noop() {
        black_box(());
    }

    #[inline(never)]
    fn add(a: u32, b: u32) -> u32 {
        bench_common::add(a, b)
    }

    #[inline(never)]
    fn echo(s: &str) -> String {
        s.to_owned()
    }

    #[inline(never)]
    fn sum(b: &[u8]) -> u64 {
        bench_common::sum(b)
    }

    #[inline(never)]
    fn nested(r: &Rec) -> Rec {
        r.clone()
    }

    bench_common::rec_fns!();
}

fn main() -> ExitCode {
    bench_common::main::<Direct>()
}
