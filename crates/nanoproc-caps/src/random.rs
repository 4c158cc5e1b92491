//! The random family: `random` (secure) and `insecure-random`, real or seeded.

use crate::family::{
    Family, GrantError, GrantValue, Instead, Line, RootContext, Suggestion, Use, ValueKind,
    Violation,
};
use crate::switch::{self, Mode, Switch};

pub struct Random;

/// Where granted random bytes come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RandomMode {
    #[default]
    Real,
    /// Reproducible bytes from this seed. Not secret, so any nanoprocess may be
    /// given it; never use it where secrecy matters.
    Seeded(u64),
}

impl Mode for RandomMode {
    fn is_data(&self) -> bool {
        matches!(self, RandomMode::Seeded(_))
    }

    /// Real bytes only from a parent that has real ones.
    fn within(&self, parent: &Self, key: &str) -> Result<(), String> {
        match parent {
            RandomMode::Real => Ok(()),
            RandomMode::Seeded(_) => Err(switch::not_real(key)),
        }
    }

    fn describe(&self) -> Option<String> {
        match self {
            RandomMode::Real => None,
            RandomMode::Seeded(seed) => Some(format!("seed {seed}")),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RandomRequest {
    pub secure: Switch<RandomMode>,
    pub insecure: Switch<RandomMode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RandomHolding {
    pub secure: Option<RandomMode>,
    pub insecure: Option<RandomMode>,
}

const RANDOM: &str = "true, false or { seed = NUMBER } for reproducible bytes";

impl Family for Random {
    const NAME: &'static str = "random";
    const KEYS: &'static [&'static str] = &["random", "insecure-random"];
    type Request = RandomRequest;
    type Holding = RandomHolding;

    /// `random = true` or `{ seed = 42 }`.
    fn parse(
        request: &mut RandomRequest,
        key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        parse_one(request, key, value).map_err(|e| vec![e])
    }

    fn for_root(
        request: &RandomRequest,
        _cx: &RootContext<'_>,
    ) -> Result<RandomHolding, Vec<Violation>> {
        Ok(RandomHolding {
            secure: request.secure.held,
            insecure: request.insecure.held,
        })
    }

    fn attenuate(
        parent: &RandomHolding,
        request: &RandomRequest,
    ) -> Result<RandomHolding, Vec<Violation>> {
        let mut violations = Vec::new();
        let holding = RandomHolding {
            secure: switch::attenuate("random", &parent.secure, &request.secure, &mut violations),
            insecure: switch::attenuate(
                "insecure-random",
                &parent.insecure,
                &request.insecure,
                &mut violations,
            ),
        };
        crate::family::checked(holding, violations)
    }

    fn within(child: &RandomHolding, parent: &RandomHolding) -> bool {
        switch::within(&child.secure, &parent.secure)
            && switch::within(&child.insecure, &parent.insecure)
    }

    fn holds(holding: &RandomHolding, key: &str) -> bool {
        match key {
            "random" => holding.secure.is_some(),
            "insecure-random" => holding.insecure.is_some(),
            _ => false,
        }
    }

    fn allows(holding: &RandomHolding, used: &Use<'_>) -> bool {
        match used.key {
            "random" => holding.secure.is_some(),
            "insecure-random" => holding.insecure.is_some(),
            _ => false,
        }
    }

    fn propose(
        uses: &[Use<'_>],
        held: &RandomHolding,
        _parent: Option<&RandomHolding>,
    ) -> Vec<Suggestion> {
        let mut out = Vec::new();
        for (key, mode, flag) in [
            ("random", held.secure, "--random"),
            ("insecure-random", held.insecure, "--insecure-random"),
        ] {
            if !uses.iter().any(|u| u.key == key) {
                continue;
            }
            out.push(match mode {
                Some(RandomMode::Seeded(seed)) => {
                    let mut s = Suggestion::new(
                        key,
                        format!("{{ seed = {seed} }}"),
                        Some(format!("--random-seed {seed}")),
                    );
                    s.needs_parent = false;
                    s
                }
                _ => {
                    let mut s = Suggestion::new(key, "true", Some(flag.into()));
                    s.instead = Instead::new(
                        "{ seed = 1 }",
                        "--random-seed 1",
                        "reproducible bytes from a seed (not secret), which its parent need not hold",
                    );
                    s
                }
            });
        }
        out
    }

    fn everything(parent: &RandomHolding, written: &RandomRequest) -> RandomRequest {
        RandomRequest {
            secure: switch::learning(&parent.secure, &written.secure),
            insecure: switch::learning(&parent.insecure, &written.insecure),
        }
    }

    fn describe(holding: &RandomHolding) -> Vec<Line> {
        vec![(
            "random",
            switch::line([
                switch::described("random", &holding.secure),
                switch::described("insecure-random", &holding.insecure),
            ]),
        )]
    }
}

/// Reads one key's value (see [`Family::parse`]).
fn parse_one(request: &mut RandomRequest, key: &str, value: &GrantValue) -> Result<(), GrantError> {
    let expected = || value.error(format!("{key}: expected {RANDOM}"));
    let held = match &value.kind {
        ValueKind::Bool(held) => held.then_some(RandomMode::Real),
        ValueKind::Table(entries) => match entries.as_slice() {
            [(k, seed)] if k.name == "seed" => match seed.kind {
                ValueKind::Integer(n) => Some(RandomMode::Seeded(
                    u64::try_from(n).map_err(|_| expected())?,
                )),
                _ => return Err(expected()),
            },
            _ => return Err(expected()),
        },
        _ => return Err(expected()),
    };
    let switch = Switch {
        held,
        span: value.span.clone(),
    };
    if key == "random" {
        request.secure = switch;
    } else {
        request.insecure = switch;
    }
    Ok(())
}
