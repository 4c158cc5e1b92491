//! The compute-bound workload: `bench_compute <rounds>` runs a sieve of Eratosthenes
//! over the first 2^20 integers `rounds` times and folds every prime it finds into a
//! 64-bit hash, then prints `compute <rounds> <hash>`. Deterministic, no WASI calls
//! besides its arguments and one line of output; its memory is allocated once.

use std::process::ExitCode;

const LIMIT: usize = 1 << 20;

fn mix(x: u64) -> u64 {
    let x = x.wrapping_mul(0x0000_0100_0000_01b3);
    x.rotate_left(29) ^ (x >> 17)
}

fn main() -> ExitCode {
    let Some(rounds) = std::env::args().nth(1).and_then(|r| r.parse::<u64>().ok()) else {
        eprintln!("usage: bench_compute <rounds>");
        return ExitCode::from(2);
    };
    let mut sieve = vec![true; LIMIT];
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for round in 0..rounds {
        sieve.fill(true);
        sieve[0] = false;
        sieve[1] = false;
        let mut i = 2;
        while i * i < LIMIT {
            if sieve[i] {
                let mut j = i * i;
                while j < LIMIT {
                    sieve[j] = false;
                    j += i;
                }
            }
            i += 1;
        }
        for (p, &prime) in sieve.iter().enumerate() {
            if prime {
                hash = mix(hash ^ p as u64 ^ round);
            }
        }
    }
    println!("compute {rounds} {hash:016x}");
    ExitCode::SUCCESS
}
