//! Host-defined capabilities, host side: interfaces an embedding application
//! implements in Rust and registers with the [`crate::Runtime`] as capability
//! families ([`HostFamily`]), granted in manifests under `grants.host`
//! (`nanoproc_caps::host`).
//!
//! The host never links its functions itself: it hands nanoproc a function per
//! WIT function, and nanoproc links a wrapper that, on every call, asks the calling
//! nanoprocess's holding of the family (held at all? the call's target within one
//! of its scopes?), records the decision in the audit under the family's name, and
//! only then runs the host's function. A refused call never reaches the host's
//! code: it returns the value the family declared for a refusal (the interface's
//! own error case) or traps the calling nanoprocess, as a WASI function without an
//! error case does. What the host's function is told of the caller is its tree
//! path and holding ([`HostCall`]): nothing of the guest's memory, no store.
//!
//! Like the other families, the wrapper is linked once per component and decides
//! per nanoprocess from the store data alone ([`State`]), so one linked component
//! serves nanoprocesses with different grants.

use crate::audit::{Decision, Recorder};
use crate::error::CapabilityRefused;
use crate::state::NanoState;
use nanoproc_caps::{HostHolding, ScopeRule};
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};
use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentNamedList, Lift, Linker, Lower};
use wasmtime_wasi::WasiCtxBuilder;

/// The host families' part of a nanoprocess's state: what it holds of each.
pub(crate) struct State {
    holdings: BTreeMap<String, HostHolding>,
    recorder: Recorder,
}

pub(crate) fn build(
    holding: &BTreeMap<String, HostHolding>,
    _wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    Ok(State {
        holdings: holding.clone(),
        recorder: cx.recorder.clone(),
    })
}

/// No interface is served by every runtime: each runtime serves those of the
/// families registered with it ([`HostFamilies::serves`]).
pub(crate) const INTERFACES: &[(&str, &str)] = &[];

pub(crate) const FAMILY: &str = <nanoproc_caps::Host as nanoproc_caps::Family>::NAME;

/// `inspect` knows no host's interfaces: they are whatever a host registers.
pub(crate) const SURFACE: super::Surface = &[];
pub(crate) const PREVIEW1: super::Surface = &[];

/// Nothing is linked for every component: [`HostFamilies::add_to_linker`] links
/// the registered families.
pub(crate) fn add_to_linker(_linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    Ok(())
}

/// What a host function is told about the call it serves.
pub struct HostCall<'a> {
    nanoprocess: &'a str,
    holding: &'a HostHolding,
    recorder: &'a Recorder,
    family: &'static str,
    operation: &'static str,
}

impl HostCall<'_> {
    /// The calling nanoprocess's path in its tree (`app/plugin`).
    pub fn nanoprocess(&self) -> &str {
        self.nanoprocess
    }

    /// What the caller holds of the family: its scopes, already checked against
    /// the call's target.
    pub fn holding(&self) -> &HostHolding {
        self.holding
    }

    /// Checks one more target of the same call (a function that touches two keys,
    /// such as a copy, names one as its target and checks the other here), and
    /// records the decision like the first. `Err` carries the reason to return to
    /// the guest.
    pub fn check(&self, target: &str) -> Result<(), String> {
        check(
            self.recorder,
            self.family,
            self.operation,
            Some(self.holding),
            Some(target),
        )
    }
}

/// A capability family the host defines: a name (its key under `grants.host`),
/// how its scopes narrow ([`ScopeRule`]), and the functions of the WIT interfaces
/// it serves. Register it with [`crate::Runtime::with_host_family`].
///
/// ```no_run
/// use nanoproc_runtime::Runtime;
/// use nanoproc_runtime::caps::ScopeRule;
/// use nanoproc_runtime::host::HostFamily;
/// use std::collections::BTreeMap;
/// use std::sync::{Arc, Mutex};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
/// let kv = HostFamily::new("kv", ScopeRule::Prefix)
///     .func(
///         "nanoproc:plugins/kv@0.1.0",
///         "get",
///         // What the call is aimed at: checked against the caller's scopes.
///         |(key,): &(String,)| Some(key.clone()),
///         move |_call, (key,): (String,)| {
///             Ok((Ok::<_, String>(store.lock().unwrap().get(&key).cloned()),))
///         },
///     )
///     // What a refused call returns: the interface's own error case.
///     .refusing(|reason: String| (Err::<Option<String>, String>(reason),));
/// let runtime = Runtime::new()?.with_host_family(kv)?;
/// # Ok(()) }
/// ```
pub struct HostFamily {
    name: String,
    rule: ScopeRule,
    funcs: Vec<HostFunc>,
    /// Mistakes in building it, reported by `with_host_family`.
    errors: Vec<String>,
}

/// Links one host function into a linker, checked and audited.
type LinkFn = dyn Fn(
        &mut Linker<NanoState>,
        &str,
        &'static str,
        &'static str,
        Option<wasmtime_wasi::NamedId>,
    ) -> wasmtime::Result<()>
    + Send
    + Sync;

#[derive(Clone)]
struct HostFunc {
    interface: String,
    name: String,
    link: Arc<LinkFn>,
    /// The slot `refusing` fills: an `Arc<OnceLock<Refuse<R>>>` for the function's
    /// result type `R`.
    refusal: Arc<dyn Any + Send + Sync>,
}

type Refuse<R> = Box<dyn Fn(String) -> R + Send + Sync>;

impl fmt::Debug for HostFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostFamily")
            .field("name", &self.name)
            .field("rule", &self.rule)
            .field(
                "funcs",
                &self
                    .funcs
                    .iter()
                    .map(|f| format!("{}#{}", f.interface, f.name))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl HostFamily {
    /// A family named `name` (granted as `grants.host.<name>`), whose scopes
    /// narrow by `rule`.
    pub fn new(name: impl Into<String>, rule: ScopeRule) -> Self {
        Self {
            name: name.into(),
            rule,
            funcs: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Serves function `func` of WIT interface `interface`: with its version, as
    /// components import it (`example:kv/store@0.1.0`), or without one to serve
    /// every version of it (`example:kv/store`). Every call is checked
    /// against the caller's holding of this family, aimed at `target(&params)`
    /// (`None`: the call is not about one scope, and needs only the family
    /// held), and recorded; only an allowed call runs `imp`. A refused call
    /// traps the caller, unless [`HostFamily::refusing`] gives the value it
    /// returns instead.
    ///
    /// `Params` and `Results` are the function's parameter and result tuples, as
    /// in wasmtime's `func_wrap`; they are checked against each component's
    /// import when it is linked (a mismatch is a `check` error).
    pub fn func<Params, Results>(
        mut self,
        interface: &str,
        func: &str,
        target: impl Fn(&Params) -> Option<String> + Send + Sync + 'static,
        imp: impl Fn(&HostCall<'_>, Params) -> wasmtime::Result<Results> + Send + Sync + 'static,
    ) -> Self
    where
        Params: ComponentNamedList + Lift + Send + Sync + 'static,
        Results: ComponentNamedList + Lower + Send + Sync + 'static,
    {
        let refusal: Arc<OnceLock<Refuse<Results>>> = Arc::default();
        let slot = refusal.clone();
        let target = Arc::new(target);
        let imp = Arc::new(imp);
        let link: Arc<LinkFn> = Arc::new(
            move |linker: &mut Linker<NanoState>,
                  interface: &str,
                  family: &'static str,
                  operation: &'static str,
                  persona: Option<wasmtime_wasi::NamedId>| {
                let refusal = slot.clone();
                let target = target.clone();
                let imp = imp.clone();
                let name = operation.rsplit('#').next().unwrap_or(operation);
                linker.instance(interface)?.func_wrap(
                    name,
                    move |cx: StoreContextMut<'_, NanoState>, params: Params| {
                        let data = cx.data();
                        // The caller: the store's own nanoprocess, or, through a
                        // named import, the fused nanoprocess it is bound to.
                        let (state, path) = match persona {
                            None => (&data.families.host, data.path()),
                            Some(id) => {
                                let p = &data.fused[id.0];
                                (&p.families.host, &p.recorder.path)
                            }
                        };
                        let holding = state.holdings.get(family);
                        let aimed = target(&params);
                        match check(
                            &state.recorder,
                            family,
                            operation,
                            holding,
                            aimed.as_deref(),
                        ) {
                            Ok(()) => {}
                            Err(reason) => {
                                return match refusal.get() {
                                    Some(refuse) => Ok(refuse(reason)),
                                    None => Err(wasmtime::Error::new(CapabilityRefused {
                                        nanoprocess: path.clone(),
                                        capability: family,
                                        operation,
                                    })),
                                };
                            }
                        }
                        // `check` allowed it: the family is held.
                        let Some(holding) = holding else {
                            unreachable!("an allowed call's family is held")
                        };
                        let call = HostCall {
                            nanoprocess: path,
                            holding,
                            recorder: &state.recorder,
                            family,
                            operation,
                        };
                        imp(&call, params)
                    },
                )
            },
        );
        self.funcs.push(HostFunc {
            interface: interface.to_string(),
            name: func.to_string(),
            link,
            refusal,
        });
        self
    }

    /// For the function added last: what a refused call returns, given the
    /// reason, instead of trapping the caller: the interface's own error case
    /// (`(Err(reason),)` for a `result<_, string>`).
    pub fn refusing<Results: Send + Sync + 'static>(
        mut self,
        refuse: impl Fn(String) -> Results + Send + Sync + 'static,
    ) -> Self {
        let Some(last) = self.funcs.last() else {
            self.errors
                .push("`refusing` must follow the `func` it is for".into());
            return self;
        };
        let what = format!("{}#{}", last.interface, last.name);
        match last.refusal.clone().downcast::<OnceLock<Refuse<Results>>>() {
            Ok(slot) => {
                if slot.set(Box::new(refuse)).is_err() {
                    self.errors
                        .push(format!("{what}: `refusing` is given twice"));
                }
            }
            Err(_) => self.errors.push(format!(
                "{what}: `refusing` returns another type than the function's results"
            )),
        }
        self
    }
}

/// Decides one call: allowed if the family is held and the target (if any) is
/// within its scopes; records the decision. `Err` is the reason for the guest.
fn check(
    recorder: &Recorder,
    family: &'static str,
    operation: &'static str,
    holding: Option<&HostHolding>,
    target: Option<&str>,
) -> Result<(), String> {
    let refusal = match holding {
        None => Some(format!(
            "not granted: its grants do not include host.{family}"
        )),
        Some(held) if !held.allows(target) => Some(format!(
            "outside its scopes of host.{family} ({})",
            held.scopes
        )),
        Some(_) => None,
    };
    let target_text = || target.map(str::to_string);
    match refusal {
        None => {
            recorder.decide(family, operation, target_text, Decision::Allowed, None);
            Ok(())
        }
        Some(reason) => {
            recorder.decide(
                family,
                operation,
                target_text,
                Decision::Refused,
                Some(reason.clone()),
            );
            Err(format!(
                "nanoprocess `{}` was refused {operation}{}: {reason}",
                recorder.path,
                target.map_or(String::new(), |t| format!(" on {:?}", clip(t)))
            ))
        }
    }
}

/// A guest's target, shortened for the message returned to it (the audit clips
/// its own copy).
fn clip(text: &str) -> &str {
    let mut end = text.len().min(256);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Why a host family could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFamilyError(pub String);

impl fmt::Display for HostFamilyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostFamilyError {}

/// A registered family: its name and operation names made `'static` once, at
/// registration (the audit's events name capabilities and operations so).
#[derive(Clone)]
struct Registered {
    name: &'static str,
    rule: ScopeRule,
    funcs: Vec<(HostFunc, &'static str)>,
}

/// The host families registered with a runtime.
#[derive(Clone, Default)]
pub(crate) struct HostFamilies {
    families: Arc<Vec<Registered>>,
}

impl HostFamilies {
    /// The same set with `family` added, or why it cannot be.
    pub fn with(&self, family: HostFamily) -> Result<Self, HostFamilyError> {
        let name = family.name.clone();
        let refuse = |why: String| Err(HostFamilyError(format!("host family `{name}`: {why}")));
        if let Some(first) = family.errors.first() {
            return refuse(first.clone());
        }
        if !nanoproc_caps::host::valid_name(&name) {
            return refuse(
                "a name is a lowercase letter, then lowercase letters, digits, `-` or `_` (at most 64)"
                    .into(),
            );
        }
        // A built-in family's name or key, or a name the audit records its own
        // decisions under (`restart`, `handle`), would make the audit, `check` and
        // the grants ambiguous; `host` itself is the table they are granted in.
        let built_in = nanoproc_caps::FAMILIES
            .iter()
            .any(|f| f.name == name || f.keys.contains(&name.as_str()))
            || ["restart", "handle", "limits", "nanoproc"].contains(&name.as_str());
        if built_in {
            return refuse(format!(
                "`{name}` is the name of one of nanoproc's own capabilities; choose another"
            ));
        }
        if self.families.iter().any(|f| f.name == name) {
            return refuse("a family of that name is already registered".into());
        }
        if family.funcs.is_empty() {
            return refuse("it serves no function: add them with `func`".into());
        }
        let mut funcs = Vec::new();
        for f in family.funcs {
            if f.interface.starts_with("wasi:") {
                return refuse(format!(
                    "{} is a WASI interface: nanoproc serves WASI itself, each family through its guards",
                    f.interface
                ));
            }
            let clash = self
                .families
                .iter()
                .flat_map(|r| r.funcs.iter().map(move |(g, _)| (r.name, g)))
                .chain(funcs.iter().map(|(g, _): &(HostFunc, _)| ("", g)))
                .find(|(_, g)| g.interface == f.interface && g.name == f.name);
            if let Some((owner, _)) = clash {
                let by = if owner.is_empty() {
                    "twice".to_string()
                } else {
                    format!("already, by `{owner}`")
                };
                return refuse(format!("{}#{} is served {by}", f.interface, f.name));
            }
            let operation: &'static str =
                Box::leak(format!("{}#{}", f.interface, f.name).into_boxed_str());
            funcs.push((f, operation));
        }
        let mut families: Vec<Registered> = self.families.as_ref().clone();
        families.push(Registered {
            name: Box::leak(name.into_boxed_str()),
            rule: family.rule,
            funcs,
        });
        Ok(Self {
            families: Arc::new(families),
        })
    }

    /// The rule of the family named `name`, if one is registered.
    pub fn rule_of(&self, name: &str) -> Option<ScopeRule> {
        self.families
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.rule)
    }

    /// Whether import `name` is an interface a registered family serves: the
    /// same name, or the name without a version (which serves every version).
    pub fn serves(&self, name: &str) -> bool {
        self.families
            .iter()
            .flat_map(|f| &f.funcs)
            .any(|(f, _)| crate::interfaces::names_match(name, &f.interface))
    }

    /// Links every registered family's functions of the interfaces the component
    /// imports (`imports`), each through its check.
    pub fn add_to_linker(
        &self,
        linker: &mut Linker<NanoState>,
        imports: &[&str],
    ) -> wasmtime::Result<()> {
        for family in self.families.iter() {
            for (f, operation) in &family.funcs {
                // Linked under the name the component imports it by.
                for import in imports {
                    if crate::interfaces::names_match(import, &f.interface) {
                        (f.link)(linker, import, family.name, operation, None)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Links the registered families' functions again for the imports a fused
    /// composite makes of them under generated names (`named`: import name to
    /// persona), each bound to that fused nanoprocess's own holding and path.
    pub(crate) fn add_named_to_linker(
        &self,
        linker: &mut Linker<NanoState>,
        named: &HashMap<String, usize>,
        originals: &HashMap<String, String>,
    ) -> wasmtime::Result<()> {
        for (import, &at) in named {
            // The family is the one that serves the interface as the fused
            // nanoprocess imported it, version included: the composite may encode
            // a merged, semver-compatible version that another family serves.
            let Some(original) = originals.get(import) else {
                continue;
            };
            for family in self.families.iter() {
                for (f, operation) in &family.funcs {
                    if crate::interfaces::names_match(original, &f.interface) {
                        let persona = Some(wasmtime_wasi::NamedId(at));
                        (f.link)(linker, import, family.name, operation, persona)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The names registered, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.families.iter().map(|f| f.name).collect()
    }
}

/// Nothing is named here: host-defined families are linked by the runtime's
/// `HostFamilies` (`HostFamilies::add_named_to_linker` for fused nanoprocesses).
pub(crate) fn add_named_to_linker(
    _linker: &mut Linker<NanoState>,
    _component: &wasmtime::component::Component,
    _lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    Ok(())
}

/// This family's WASI 0.3 interfaces: none (a host family is linked by its own name, whatever WASI version its caller uses).
pub(crate) fn add_p3_to_linker(_linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    Ok(())
}
