//! Serves `bench:calls/api` by forwarding every call to the `api` it imports: one
//! link of a chain of nanoprocesses, for the instantiation benchmark's 10- and
//! 100-nanoprocess trees.

wit_bindgen::generate!({ path: "../wit/bench.wit", world: "bench-relay" });

use bench::calls::api as next;
use exports::bench::calls::api::{Guest, Leaf, Rec};

struct Relay;

impl Guest for Relay {
    fn noop() {
        next::noop();
    }

    fn add(a: u32, b: u32) -> u32 {
        next::add(a, b)
    }

    fn echo(s: String) -> String {
        next::echo(&s)
    }

    fn sum(b: Vec<u8>) -> u64 {
        next::sum(&b)
    }

    fn nested(r: Rec) -> Rec {
        let out = next::nested(&next::Rec {
            id: r.id,
            name: r.name,
            tags: r.tags,
            leaves: r
                .leaves
                .into_iter()
                .map(|l| next::Leaf {
                    id: l.id,
                    label: l.label,
                    values: l.values,
                })
                .collect(),
            matrix: r.matrix,
        });
        Rec {
            id: out.id,
            name: out.name,
            tags: out.tags,
            leaves: out
                .leaves
                .into_iter()
                .map(|l| Leaf {
                    id: l.id,
                    label: l.label,
                    values: l.values,
                })
                .collect(),
            matrix: out.matrix,
        }
    }
}

export!(Relay);
