//! Handles that cross a nanoprocess boundary: WASI descriptors and streams, and
//! resources a child defines.
//!
//! Every nanoprocess has its own store, so its own resource table and its own
//! handle numbers; a handle means nothing outside the nanoprocess that holds it.
//! Passing one is therefore never a copy of a number but a transfer done here, by
//! the parent's trampoline, between two tables:
//!
//! * **A WASI handle given (`own`)** leaves the giver's table and enters the
//!   receiver's. A descriptor keeps exactly the rights it had: the receiver's own
//!   grants are never consulted, so they cannot widen it.
//! * **A descriptor lent (`borrow`)** is entered in the callee's table for the call
//!   only (wasmtime-wasi's descriptor is a shared reference to the open file). When
//!   the call returns, the loan ends: the entry is deleted, and everything the
//!   callee made from it meanwhile (files opened under a lent directory, streams,
//!   pollables on them, listings) stops working at once, through the loan's switch
//!   (see `families::fs::loans`); what the callee still holds of it is dead until it drops
//!   it. Nothing made under a loan can be given onward, handed back or lent again.
//!   A directory that may create or rename is not lent or given at all when
//!   another nanoprocess's directory lies inside it (`overlap_check`).
//! * **A resource the child defines** (`resource counter`) stays in the child. The
//!   parent gets a proxy: a host resource whose number is an entry in the parent's
//!   proxy table, pointing at the child's handle and at the instance it belongs to.
//!   Calls on the proxy are forwarded to the child, dropping it drops the child's
//!   resource, and when the child fails or is restarted its proxies fail cleanly.
//!
//! A nanoprocess that presents a handle number it was not given is stopped by
//! wasmtime's per-instance handle tables before anything here runs: it cannot
//! reach another nanoprocess's objects, because it has no way to name them.
//!
//! Every WASI transfer is recorded in the audit log: from, to, and what.

use crate::audit::{Decision, Event};
use crate::state::NanoState;
use crate::trampoline::Live;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use wasmtime::StoreContextMut;
use wasmtime::component::ResourceTableError;
use wasmtime::component::types::{ResourceType, Type};
use wasmtime::component::{Resource, ResourceAny, ResourceDynamic, Val};
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, TcpSocket};

/// A WASI handle nanoproc can move between nanoprocesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WasiHandle {
    Descriptor,
    InputStream,
    OutputStream,
    TcpSocket,
}

impl WasiHandle {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "wasi:filesystem/types#descriptor" => Self::Descriptor,
            "wasi:io/streams#input-stream" => Self::InputStream,
            "wasi:io/streams#output-stream" => Self::OutputStream,
            "wasi:sockets/tcp#tcp-socket" => Self::TcpSocket,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Descriptor => "wasi:filesystem/types#descriptor",
            Self::InputStream => "wasi:io/streams#input-stream",
            Self::OutputStream => "wasi:io/streams#output-stream",
            Self::TcpSocket => "wasi:sockets/tcp#tcp-socket",
        }
    }
}

/// What a value of a function's parameter or result type carries, and where: the
/// handles in it, so that the trampoline walks only what may hold one.
#[derive(Clone, Debug)]
pub(crate) enum Walk {
    /// Nothing to transfer.
    Plain,
    Wasi {
        kind: WasiHandle,
        own: bool,
    },
    /// A resource of the dependency interface itself, proxied; `ty` is the host
    /// resource type the parent sees it as.
    Proxy {
        ty: u32,
        own: bool,
        name: String,
    },
    /// A `list`, or a fixed-length one: the walk of its elements.
    List(Box<Walk>),
    /// A `map`: the walks of its keys and of its values.
    Map(Box<Walk>, Box<Walk>),
    Record(Vec<Walk>),
    Tuple(Vec<Walk>),
    Variant(Vec<(String, Walk)>),
    Option(Box<Walk>),
    Result(Box<Walk>, Box<Walk>),
}

impl Walk {
    /// `names` names the parent component's resource types; `proxies` are the
    /// resources the dependency interface defines with the host type each got.
    pub fn of(
        ty: &Type,
        names: &crate::interfaces::ResourceNames,
        iface: &str,
        proxies: &[(String, u32)],
    ) -> Walk {
        use crate::wit_types::{Kind, Shape, shape};
        let of = |t: &Type| Walk::of(t, names, iface, proxies);
        let handle = |rt: &ResourceType, own: bool| {
            let name = names.name(rt).unwrap_or_default();
            if let Some(kind) = WasiHandle::from_name(name) {
                return Walk::Wasi { kind, own };
            }
            let local = name.rsplit('#').next().unwrap_or_default();
            match proxies.iter().find(|(n, _)| n == local) {
                Some((n, id)) => Walk::Proxy {
                    ty: *id,
                    own,
                    name: format!("{iface}#{n}"),
                },
                // The plan refuses such a function before it is linked.
                None => Walk::Plain,
            }
        };
        let w = match shape(ty) {
            Shape::Handle { resource, own } => handle(&resource, own),
            // Refused by the plan before any function passing one is linked.
            Shape::Primitive(_) | Shape::Async(_) => Walk::Plain,
            Shape::Compound { kind, parts } => {
                let mut walks = parts
                    .into_iter()
                    .map(|p| (p.label, p.ty.as_ref().map_or(Walk::Plain, &of)));
                let mut next = || Box::new(walks.next().map_or(Walk::Plain, |(_, w)| w));
                match kind {
                    Kind::List | Kind::FixedLengthList(_) => Walk::List(next()),
                    Kind::Option => Walk::Option(next()),
                    Kind::Map => Walk::Map(next(), next()),
                    Kind::Result => Walk::Result(next(), next()),
                    Kind::Record => Walk::Record(walks.map(|(_, w)| w).collect()),
                    Kind::Tuple => Walk::Tuple(walks.map(|(_, w)| w).collect()),
                    Kind::Variant => Walk::Variant(walks.collect()),
                    Kind::Enum(_) | Kind::Flags(_) => Walk::Plain,
                }
            }
        };
        if w.carries_handles() { w } else { Walk::Plain }
    }

    /// The first WASI handle type it carries (a descriptor, stream or socket), if
    /// any: what may not cross a fused edge, where no host sees it go.
    pub fn wasi_handle(&self) -> Option<&'static str> {
        match self {
            Walk::Plain | Walk::Proxy { .. } => None,
            Walk::Wasi { kind, .. } => Some(kind.name()),
            Walk::List(w) | Walk::Option(w) => w.wasi_handle(),
            Walk::Record(ws) | Walk::Tuple(ws) => ws.iter().find_map(Walk::wasi_handle),
            Walk::Variant(cases) => cases.iter().find_map(|(_, w)| w.wasi_handle()),
            Walk::Map(a, b) | Walk::Result(a, b) => a.wasi_handle().or_else(|| b.wasi_handle()),
        }
    }

    pub fn carries_handles(&self) -> bool {
        match self {
            Walk::Plain => false,
            Walk::Wasi { .. } | Walk::Proxy { .. } => true,
            Walk::List(w) | Walk::Option(w) => w.carries_handles(),
            Walk::Record(ws) | Walk::Tuple(ws) => ws.iter().any(Walk::carries_handles),
            Walk::Variant(cases) => cases.iter().any(|(_, w)| w.carries_handles()),
            Walk::Map(a, b) | Walk::Result(a, b) => a.carries_handles() || b.carries_handles(),
        }
    }

    /// Calls `f` on every handle in `v`, with the leaf of the walk that describes it.
    pub(crate) fn visit(
        &self,
        v: &mut Val,
        f: &mut dyn FnMut(&mut Val, &Walk) -> Result<(), String>,
    ) -> Result<(), String> {
        match (self, v) {
            (Walk::Plain, _) => Ok(()),
            (Walk::Wasi { .. } | Walk::Proxy { .. }, v) => f(v, self),
            (Walk::List(w), Val::List(items) | Val::FixedLengthList(items)) => {
                items.iter_mut().try_for_each(|i| w.visit(i, f))
            }
            (Walk::Map(k, w), Val::Map(entries)) => entries.iter_mut().try_for_each(|(key, v)| {
                k.visit(key, f)?;
                w.visit(v, f)
            }),
            (Walk::Record(ws), Val::Record(fields)) => ws
                .iter()
                .zip(fields.iter_mut())
                .try_for_each(|(w, (_, v))| w.visit(v, f)),
            (Walk::Tuple(ws), Val::Tuple(items)) => ws
                .iter()
                .zip(items.iter_mut())
                .try_for_each(|(w, v)| w.visit(v, f)),
            (Walk::Variant(cases), Val::Variant(name, Some(payload))) => {
                match cases.iter().find(|(n, _)| n == name) {
                    Some((_, w)) => w.visit(payload, f),
                    None => Ok(()),
                }
            }
            (Walk::Option(w), Val::Option(Some(v))) => w.visit(v, f),
            (Walk::Result(ok, _), Val::Result(Ok(Some(v)))) => ok.visit(v, f),
            (Walk::Result(_, err), Val::Result(Err(Some(v)))) => err.visit(v, f),
            _ => Ok(()),
        }
    }
}

/// Where the handles are in one function's parameters and results.
#[derive(Debug)]
pub(crate) struct Handles {
    pub params: Vec<Walk>,
    pub results: Vec<Walk>,
}

/// A parent's handle on a resource that lives in a child.
pub(crate) struct Proxy {
    /// The child (its index in the parent's `children`).
    pub child: usize,
    /// The instance of the child the resource lives in ([`Live::id`]).
    pub instance: u64,
    /// The child's own handle, in the child's store.
    pub any: ResourceAny,
    pub ty: u32,
}

/// A fresh host resource type for a proxied resource: unique in the process, so
/// that a proxy of one resource can never be passed where another is expected.
pub(crate) fn new_proxy_type() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh loan number, unique in the process.
fn new_loan() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh identity for a child instance, unique in the process.
pub(crate) fn new_instance_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The WASI handles a call took from the parent, until they reach the child.
#[derive(Default)]
pub(crate) struct Lifted {
    /// Given (`own`) by the parent: if the call never reaches the child, they are
    /// closed, as the parent's guest gave them up.
    owned: Vec<(WasiHandle, u32)>,
}

impl Lifted {
    /// Closes what the parent gave up but no child received.
    pub fn discard(self, cx: &mut StoreContextMut<'_, NanoState>) {
        for (kind, rep) in self.owned {
            cx.data_mut().families.fs.rights.take(rep);
            let table = &mut cx.data_mut().wasi.table;
            // The parent's guest gave these up: nothing else can hold them.
            let _ = match kind {
                WasiHandle::Descriptor => close::<Descriptor>(table, rep),
                WasiHandle::InputStream => close::<DynInputStream>(table, rep),
                WasiHandle::OutputStream => close::<DynOutputStream>(table, rep),
                WasiHandle::TcpSocket => close::<TcpSocket>(table, rep),
            };
        }
    }
}

/// Takes the handles in the parameters out of the parent's guest, before the
/// child is entered: each proxy becomes the child's own handle, each WASI handle
/// its entry in the parent's table. A proxy of an instance that is gone is refused
/// here, without touching (or restarting) the child.
pub(crate) fn lift_from_parent(
    cx: &mut StoreContextMut<'_, NanoState>,
    child_index: usize,
    handles: &Handles,
    params: &mut [Val],
    lifted: &mut Lifted,
) -> Result<(), String> {
    for (v, w) in params.iter_mut().zip(&handles.params) {
        w.visit(v, &mut |v, leaf| {
            if let Walk::Wasi { kind, own } = leaf {
                // Lifted out of the parent's handles now, whatever happens to the
                // call: a borrow left behind would trap the parent on return.
                let Val::Resource(any) = v else {
                    return Err(format!("expected a {} handle", kind.name()));
                };
                let rep = host_rep(*any, *kind, &mut *cx)?;
                if *own {
                    lifted.owned.push((*kind, rep));
                }
                *v = Val::U32(rep);
                return Ok(());
            }
            let Walk::Proxy { ty, own, name } = leaf else {
                return Ok(());
            };
            let Val::Resource(any) = v else {
                return Err(format!("expected a {name} handle"));
            };
            let dynamic = any
                .try_into_resource_dynamic(&mut *cx)
                .map_err(|e| format!("{name}: {e:#}"))?;
            let rep = dynamic.rep();
            let state = cx.data_mut();
            let (proxy_child, instance, child_any, proxy_ty) = match state.proxies.get(&rep) {
                Some(p) => (p.child, p.instance, p.any, p.ty),
                None => return Err(format!("{name} handle {rep} is not one this nanoprocess holds")),
            };
            if proxy_ty != *ty || proxy_child != child_index {
                return Err(format!("that handle is not a {name}"));
            }
            let child = state.children[child_index]
                .as_ref()
                .ok_or_else(|| format!("{name}: its nanoprocess is busy"))?;
            let current = child.live.as_ref().map(|l| l.id);
            if current != Some(instance) {
                let why = child.failure.as_deref().unwrap_or("it failed");
                return Err(format!(
                    "the {name} belonged to an earlier instance of `{}`, which failed ({why}); resources do not survive their nanoprocess's failure or restart",
                    child.path
                ));
            }
            if *own {
                state.proxies.remove(&rep);
            }
            *v = Val::Resource(child_any);
            Ok(())
        })?;
    }
    Ok(())
}

/// What must be undone in the child when a call returns: the loans it was given.
#[derive(Default)]
pub(crate) struct Loans {
    loans: Vec<u64>,
    borrows: Vec<ResourceAny>,
    /// The child's table entries of the lent descriptors themselves.
    lent: Vec<u32>,
}

/// Moves or lends the WASI handles in the parameters (lifted by
/// [`lift_from_parent`]) into the child's table.
pub(crate) fn wasi_to_child(
    cx: &mut StoreContextMut<'_, NanoState>,
    live: &mut Live,
    child_path: &str,
    handles: &Handles,
    params: &mut [Val],
    lifted: Lifted,
    loans: &mut Loans,
) -> Result<(), String> {
    // Every directory handed over is checked before anything moves: a refusal
    // must not leave the handles already lifted out of the parent orphaned.
    let mut checked = Ok(());
    let mut pending = Vec::new();
    for (v, w) in params.iter_mut().zip(&handles.params) {
        checked = w.visit(v, &mut |v, leaf| match (leaf, &*v) {
            (
                Walk::Wasi {
                    kind: WasiHandle::Descriptor,
                    own,
                },
                Val::U32(rep),
            ) => overlap_check(
                cx.data(),
                live.store.data(),
                *rep,
                *own,
                child_path,
                &mut pending,
            ),
            _ => Ok(()),
        });
        if checked.is_err() {
            break;
        }
    }
    if let Err(why) = checked {
        lifted.discard(cx);
        return Err(why);
    }
    // From here on the parent's given handles are the child's, or closed with
    // the child if the call fails.
    drop(lifted);
    for (v, w) in params.iter_mut().zip(&handles.params) {
        w.visit(v, &mut |v, leaf| {
            let Walk::Wasi { kind, own } = leaf else {
                return Ok(());
            };
            let Val::U32(rep) = *v else {
                return Err(format!("expected a {} handle", kind.name()));
            };
            let from = cx.data().path().clone();
            let (moved, target) = if *own {
                if cx.data().families.fs.rights.is_on_loan(rep) {
                    return Err(format!(
                        "cannot give away this {}: it was only lent to `{from}`, or made from a lent one",
                        kind.name()
                    ));
                }
                let target = describe(cx.data(), *kind, rep);
                let carried = cx.data_mut().families.fs.rights.take(rep);
                let child_rep = move_entry(&mut cx.data_mut().wasi.table, &mut live.store, *kind, rep)?;
                if let Some(carried) = carried {
                    live.store.data_mut().families.fs.rights.receive(child_rep, carried, None);
                }
                (own_any(&mut live.store, *kind, child_rep)?, target)
            } else {
                // Only descriptors can be lent (checked with the plan).
                if cx.data().families.fs.rights.is_revoked(rep) {
                    return Err(format!(
                        "cannot lend this {}: it was lent to `{from}` for a call that has ended",
                        kind.name()
                    ));
                }
                let target = describe(cx.data(), *kind, rep);
                let d = cx
                    .data()
                    .wasi
                    .table
                    .get(&Resource::<Descriptor>::new_borrow(rep))
                    .map_err(|e| format!("{}: {e}", kind.name()))?
                    .clone();
                let child_rep = live
                    .store
                    .data_mut()
                    .wasi
                    .table
                    .push(d)
                    .map_err(|e| format!("{}: {e}", kind.name()))?
                    .rep();
                let loan = new_loan();
                loans.loans.push(loan);
                loans.lent.push(child_rep);
                if let Some(carried) = cx.data().families.fs.rights.get(rep) {
                    live.store
                        .data_mut()
                        .families.fs.rights
                        .receive(child_rep, carried, Some(loan));
                }
                // Held by the host as an owned handle (a borrow can only be made
                // inside a call), lowered into the callee's `borrow` parameter, and
                // released when the call returns.
                let lent = own_any(&mut live.store, *kind, child_rep)?;
                loans.borrows.push(lent);
                (lent, target)
            };
            record_transfer(cx.data(), *own, &from, &format!("{target} -> {child_path}"));
            *v = Val::Resource(moved);
            Ok(())
        })?;
    }
    Ok(())
}

/// A directory handed across a boundary, from `giver` to `receiver`, is checked
/// as the plan checks grants (`nanoproc_caps::laundering`): seen as the
/// receiver's, together with every directory of the plan, every directory the
/// receiver holds now and the others handed over in the same call (`pending`),
/// it must not let a file gain rights by being moved or linked from one into
/// another. And nothing lent for one call that may create or rename may contain a
/// directory that anyone but the giver and its ancestors holds, or that the
/// receiver holds or is being handed, nor lie around one: a name made there would
/// outlive the loan.
fn overlap_check(
    giver: &NanoState,
    receiver: &NanoState,
    rep: u32,
    own: bool,
    to: &str,
    pending: &mut Vec<(PathBuf, nanoproc_caps::FsRights, bool)>,
) -> Result<(), String> {
    use nanoproc_caps::{FsRights, Region};
    let Some(carried) = giver.families.fs.rights.get(rep) else {
        return Ok(());
    };
    let Some(at) = dir_path(giver, rep) else {
        return Ok(()); // a file: nothing can be put in it
    };
    let refuse = |why: String| {
        Err(format!(
            "cannot {} {} to `{to}`: {why}",
            if own { "give" } else { "lend" },
            carried.path
        ))
    };
    let Ok(at) = at else {
        return refuse("where it is cannot be told".into());
    };
    // What the receiver holds, as it is now. One that cannot be located counts
    // against the transfer: this check fails closed.
    let mut held: Vec<(PathBuf, FsRights)> = Vec::new();
    for (r, rights) in receiver.families.fs.rights.held() {
        match dir_path(receiver, r) {
            None => {}
            Some(Ok(p)) => held.push((p, rights)),
            Some(Err(())) => return refuse("a directory it holds cannot be located".into()),
        }
    }
    let moves = FsRights::CREATE.union(FsRights::RENAME);
    let may_move = |rights: FsRights| rights.intersection(moves) != FsRights::NONE;
    let strictly_inside = |p: &PathBuf, of: &PathBuf| p != of && p.starts_with(of);
    if !own && may_move(carried.rights()) {
        let inside = giver
            .plan_dirs
            .foreign_to(giver.node)
            .map(|(_, p, _)| p)
            .chain(held.iter().map(|(p, _)| p))
            .chain(pending.iter().map(|(p, _, _)| p))
            .find(|p| strictly_inside(p, &at));
        if let Some(p) = inside {
            return refuse(format!(
                "it may create or rename, and {} lies inside it: a name made there would outlive the loan",
                p.display()
            ));
        }
    }
    if let Some((p, _, _)) = pending
        .iter()
        .find(|(p, rights, given)| !*given && may_move(*rights) && strictly_inside(&at, p))
    {
        return refuse(format!(
            "it lies inside {}, lent in the same call: a name made there would outlive the loan",
            p.display()
        ));
    }
    let mut regions: Vec<Region<'_>> = giver
        .plan_dirs
        .regions
        .iter()
        .map(|(owner, host, rights)| Region {
            owner: *owner,
            dir: 0,
            host,
            rights: *rights,
        })
        .collect();
    let mine = |host, rights| Region {
        owner: receiver.node,
        dir: 0,
        host,
        rights,
    };
    regions.extend(held.iter().map(|(host, rights)| mine(host, *rights)));
    regions.extend(pending.iter().map(|(host, rights, _)| mine(host, *rights)));
    let handed = regions.len();
    regions.push(mine(&at, carried.rights()));
    let found = nanoproc_caps::laundering(&regions)
        .into_iter()
        .find(|l| l.outer == handed || l.inner == handed);
    if let Some(l) = found {
        let other = if l.outer == handed { l.inner } else { l.outer };
        return refuse(format!(
            "it overlaps {} ({} {}), and a file moved or linked {} would gain {}",
            regions[other].host.display(),
            if l.outer == handed {
                "inside it"
            } else {
                "around it"
            },
            regions[other].rights,
            if l.outer == handed {
                "there"
            } else {
                "into it"
            },
            l.gained
        ));
    }
    pending.push((at, carried.rights(), own));
    Ok(())
}

/// Where the directory behind descriptor `rep` is: `None` if it is not a
/// directory, `Some(Err)` if that cannot be told.
fn dir_path(state: &NanoState, rep: u32) -> Option<Result<PathBuf, ()>> {
    match state
        .wasi
        .table
        .get(&Resource::<Descriptor>::new_borrow(rep))
    {
        Ok(Descriptor::Dir(dir)) => Some(crate::families::fs::dirs::real_path(&dir.dir).ok_or(())),
        _ => None,
    }
}

/// Ends the loans of a call. Everything the child made from them stops working
/// at once (see `families::fs::loans`), and the lent descriptors leave the child's table:
/// the child's borrows of them ended with the call, so no handle of its guest
/// names them any more.
pub(crate) fn end_loans(live: &mut Live, loans: Loans) {
    for any in loans.borrows {
        // Releases the host's own handle; wasmtime runs no destructor for it.
        let _ = crate::drive::drop_resource(any, &mut live.store, live.is_async);
    }
    let state = live.store.data_mut();
    for loan in loans.loans {
        state.families.fs.rights.end_loan(loan);
    }
    for rep in loans.lent {
        state.families.fs.rights.take(rep);
        let _ = close::<Descriptor>(&mut state.wasi.table, rep);
    }
}

/// Brings the handles in the child's results into the parent: WASI handles move
/// to the parent's table, the child's own resources become proxies.
pub(crate) fn results_to_parent(
    cx: &mut StoreContextMut<'_, NanoState>,
    live: &mut Live,
    child_index: usize,
    child_path: &str,
    handles: &Handles,
    results: &mut [Val],
) -> Result<(), String> {
    // Directories handed back are checked as those handed down (`overlap_check`).
    let mut handed_back = Vec::new();
    for (v, w) in results.iter_mut().zip(&handles.results) {
        w.visit(v, &mut |v, leaf| {
            let Val::Resource(any) = v else {
                return Err("expected a handle".into());
            };
            match leaf {
                Walk::Proxy { ty, name, .. } => {
                    let state = cx.data_mut();
                    // Proxies count against the holder's `handles` limit, like the
                    // WASI handles in its table.
                    if let Some(limit) = state.limits.get(nanoproc_caps::LimitKind::Handles)
                        && state.proxies.len() as u64 >= limit
                    {
                        // The child's resource would have no holder: drop it there.
                        let _ = crate::drive::drop_resource(*any, &mut live.store, live.is_async);
                        let state = cx.data();
                        return Err(format!(
                            "`{}` cannot take another {name}: it holds {limit} resources of its dependencies, its `handles` limit",
                            state.path()
                        ));
                    }
                    state.next_proxy = state.next_proxy.wrapping_add(1).max(1);
                    let rep = state.next_proxy;
                    state.proxies.insert(
                        rep,
                        Proxy {
                            child: child_index,
                            instance: live.id,
                            any: *any,
                            ty: *ty,
                        },
                    );
                    let proxy = ResourceDynamic::new_own(rep, *ty)
                        .try_into_resource_any(&mut *cx)
                        .map_err(|e| format!("{e:#}"))?;
                    *v = Val::Resource(proxy);
                }
                Walk::Wasi { kind, .. } => {
                    let rep = host_rep(*any, *kind, &mut live.store)?;
                    if live.store.data().families.fs.rights.is_on_loan(rep) {
                        return Err(format!(
                            "`{child_path}` tried to hand back a {} it was only lent, or made from a lent one",
                            kind.name()
                        ));
                    }
                    if *kind == WasiHandle::Descriptor {
                        let to = cx.data().path().clone();
                        overlap_check(live.store.data(), cx.data(), rep, true, &to, &mut handed_back)?;
                    }
                    let target = describe(live.store.data(), *kind, rep);
                    let carried = live.store.data_mut().families.fs.rights.take(rep);
                    let parent_rep = move_entry(
                        &mut live.store.data_mut().wasi.table,
                        &mut *cx,
                        *kind,
                        rep,
                    )?;
                    if let Some(carried) = carried {
                        cx.data_mut().families.fs.rights.receive(parent_rep, carried, None);
                    }
                    let to = cx.data().path().clone();
                    record_transfer(live.store.data(), true, child_path, &format!("{target} -> {to}"));
                    *v = Val::Resource(own_any(&mut *cx, *kind, parent_rep)?);
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// The table index (rep) of a WASI handle lifted from a guest.
fn host_rep(
    any: ResourceAny,
    kind: WasiHandle,
    store: impl wasmtime::AsContextMut<Data = NanoState>,
) -> Result<u32, String> {
    let rep = match kind {
        WasiHandle::Descriptor => any.try_into_resource::<Descriptor>(store).map(|r| r.rep()),
        WasiHandle::InputStream => any
            .try_into_resource::<DynInputStream>(store)
            .map(|r| r.rep()),
        WasiHandle::OutputStream => any
            .try_into_resource::<DynOutputStream>(store)
            .map(|r| r.rep()),
        WasiHandle::TcpSocket => any.try_into_resource::<TcpSocket>(store).map(|r| r.rep()),
    };
    rep.map_err(|e| format!("{}: {e:#}", kind.name()))
}

/// Deletes the table entry `rep`, of type `T`. Checks the type first: wasmtime's
/// `delete` frees the entry before it looks at the type.
fn close<T: Send + 'static>(
    table: &mut wasmtime::component::ResourceTable,
    rep: u32,
) -> Result<(), ResourceTableError> {
    let entry = Resource::<T>::new_own(rep);
    table.get(&entry)?;
    table.delete(entry).map(drop)
}

/// Moves the table entry `rep` of `from` into the table of `to`; its new rep.
fn move_entry(
    from: &mut wasmtime::component::ResourceTable,
    mut to: impl wasmtime::AsContextMut<Data = NanoState>,
    kind: WasiHandle,
    rep: u32,
) -> Result<u32, String> {
    let err = |e: wasmtime::component::ResourceTableError| {
        format!("cannot move the {}: {e}", kind.name())
    };
    let mut to = to.as_context_mut();
    let table = &mut to.data_mut().wasi.table;
    let new = match kind {
        WasiHandle::Descriptor => {
            let d = from
                .delete(Resource::<Descriptor>::new_own(rep))
                .map_err(err)?;
            table.push(d).map_err(err)?.rep()
        }
        WasiHandle::InputStream => {
            let s = from
                .delete(Resource::<DynInputStream>::new_own(rep))
                .map_err(err)?;
            table.push(s).map_err(err)?.rep()
        }
        WasiHandle::OutputStream => {
            let s = from
                .delete(Resource::<DynOutputStream>::new_own(rep))
                .map_err(err)?;
            table.push(s).map_err(err)?.rep()
        }
        WasiHandle::TcpSocket => {
            let s = from
                .delete(Resource::<TcpSocket>::new_own(rep))
                .map_err(err)?;
            table.push(s).map_err(err)?.rep()
        }
    };
    Ok(new)
}

/// An owned handle to table entry `rep`, to lower into the store's guest.
fn own_any(
    store: impl wasmtime::AsContextMut<Data = NanoState>,
    kind: WasiHandle,
    rep: u32,
) -> Result<ResourceAny, String> {
    let any = match kind {
        WasiHandle::Descriptor => Resource::<Descriptor>::new_own(rep).try_into_resource_any(store),
        WasiHandle::InputStream => {
            Resource::<DynInputStream>::new_own(rep).try_into_resource_any(store)
        }
        WasiHandle::OutputStream => {
            Resource::<DynOutputStream>::new_own(rep).try_into_resource_any(store)
        }
        WasiHandle::TcpSocket => Resource::<TcpSocket>::new_own(rep).try_into_resource_any(store),
    };
    any.map_err(|e| format!("{e:#}"))
}

/// `wasi:filesystem/types#descriptor /data/a.txt (read+list)`, for the record.
fn describe(state: &NanoState, kind: WasiHandle, rep: u32) -> String {
    match (kind, state.families.fs.rights.get(rep)) {
        (WasiHandle::Descriptor, Some(carried)) => format!("{} {carried}", kind.name()),
        (WasiHandle::Descriptor, None) => format!("{} (no rights)", kind.name()),
        _ => kind.name().to_string(),
    }
}

fn record_transfer(state: &NanoState, own: bool, from: &str, target: &str) {
    // An allowed decision, like every family's: recorded only when someone reads it.
    if !state.recorder.wants_allowed() {
        return;
    }
    state.recorder.audit.record(Event {
        nanoprocess: from.into(),
        capability: "handle",
        operation: if own { "own" } else { "borrow" },
        target: Some(target.to_string()),
        decision: Decision::Allowed,
        reason: None,
        needs: None,
        request: None,
    });
}

/// Drops the child's resource behind a proxy the parent dropped. A proxy of an
/// instance that is gone has nothing left to drop.
pub(crate) fn drop_proxy(
    mut cx: StoreContextMut<'_, NanoState>,
    route: &crate::trampoline::Route,
    rep: u32,
) -> wasmtime::Result<()> {
    let Some(proxy) = cx.data_mut().proxies.remove(&rep) else {
        return Ok(());
    };
    let current = cx.data().children[proxy.child]
        .as_ref()
        .and_then(|c| c.live.as_ref())
        .map(|l| l.id);
    if current != Some(proxy.instance) {
        return Ok(());
    }
    match crate::trampoline::call_child_raw(&mut cx, route, |_, live| {
        crate::drive::drop_resource(proxy.any, &mut live.store, live.is_async)
    }) {
        Ok(()) => Ok(()),
        // The child failed in its destructor and its policy is `error`: the parent's
        // drop cannot return an error, and the child's failure is already on record
        // for its next call.
        Err(crate::trampoline::CallError::Child(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
