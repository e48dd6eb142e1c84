//! The landlock ruleset of a worker: every access right it can name handled, and no rule, so
//! nothing is allowed: no file or directory can be opened, created or changed, no TCP (or,
//! with ABI v10, UDP) port bound or connected to, no abstract UNIX socket outside the worker
//! connected to and no signal sent outside it.
//!
//! Landlock checks accesses at `open`/`bind`/`connect` time, so the fds the worker already
//! holds (its socket, stderr, the memfds of wasm images) keep working.
//!
//! Before ABI v8 (Linux 7.0), `landlock_restrict_self` restricts only the calling thread
//! (and threads it creates later, which the worker cannot). [`confine`](super::confine) must
//! therefore run on the thread that will run guests; threads started earlier (the epoch
//! ticker) are held by the seccomp filter alone. The report says which case applies.

use ::landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, LandlockStatus, RestrictSelfAttr,
    RestrictionStatus, Ruleset, RulesetAttr, RulesetStatus, Scope,
};

use super::{ConfineError, Feature};

/// The newest ABI whose rights are requested: the newest the `landlock` crate knows. The
/// crate's best-effort mode keeps what the running kernel supports and says how much that
/// was. Move it with the crate.
pub(crate) const REQUESTED_ABI: ABI = ABI::V10;

/// Applies the ruleset and describes what the kernel enforced. Never fails silently: a
/// kernel without landlock yields [`Feature::Unavailable`], which the pool logs as a warning once.
pub(crate) fn restrict_self() -> Result<Feature, ConfineError> {
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(REQUESTED_ABI))?
        .handle_access(AccessNet::from_all(REQUESTED_ABI))?
        .scope(Scope::from_all(REQUESTED_ABI))?
        .create()?
        .all_threads(true)?
        .restrict_self()?;
    let feature = describe(&status);
    // Not logged here: every worker would repeat it. The pool logs the report once.
    Ok(feature)
}

/// The report line for a restriction status.
fn describe(status: &RestrictionStatus) -> Feature {
    let (abi, kernel_abi) = match status.landlock {
        LandlockStatus::NotImplemented => {
            return Feature::Unavailable("kernel lacks landlock (not built in)".to_owned());
        }
        LandlockStatus::NotEnabled => {
            return Feature::Unavailable(
                "landlock is built into the kernel but not enabled (it is missing from the \
                 lsm= boot parameter)"
                    .to_owned(),
            );
        }
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => (effective_abi, kernel_abi),
    };
    let abi_text = match kernel_abi {
        Some(kernel) => format!("kernel ABI v{kernel}, used as v{abi}"),
        None => format!("ABI v{abi}"),
    };
    match status.ruleset {
        RulesetStatus::NotEnforced => Feature::Unavailable(format!(
            "{abi_text}: the kernel enforced no part of the ruleset"
        )),
        RulesetStatus::FullyEnforced => Feature::On(format!(
            "{abi_text}: {}; {}",
            enforced(abi),
            threads(status.all_threads)
        )),
        RulesetStatus::PartiallyEnforced => Feature::Partial(format!(
            "{abi_text}: {}; not enforced by this kernel: {}; {}",
            enforced(abi),
            missing(abi),
            threads(status.all_threads)
        )),
    }
}

/// What a kernel of `abi` enforces of the ruleset.
fn enforced(abi: ABI) -> String {
    let mut parts = vec![format!(
        "no file-system access ({} rights denied)",
        AccessFs::from_all(abi).len()
    )];
    let net = AccessNet::from_all(abi);
    if !net.is_empty() {
        parts.push(format!("no network ({})", names(net)));
    }
    let scopes = Scope::from_all(abi);
    if !scopes.is_empty() {
        parts.push(format!("scoped: {}", names(scopes)));
    }
    parts.join(", ")
}

/// What the ruleset requests that a kernel of `abi` does not enforce.
fn missing(abi: ABI) -> String {
    let mut parts = Vec::new();
    let fs = AccessFs::from_all(REQUESTED_ABI) & !AccessFs::from_all(abi);
    if !fs.is_empty() {
        parts.push(format!("file-system rights {}", names(fs)));
    }
    let net = AccessNet::from_all(REQUESTED_ABI) & !AccessNet::from_all(abi);
    if !net.is_empty() {
        parts.push(format!("network rights {}", names(net)));
    }
    let scopes = Scope::from_all(REQUESTED_ABI) & !Scope::from_all(abi);
    if !scopes.is_empty() {
        parts.push(format!("scopes {}", names(scopes)));
    }
    if abi < ABI::V8 {
        parts.push("all-threads enforcement (ABI v8)".to_owned());
    }
    if parts.is_empty() {
        "nothing".to_owned()
    } else {
        parts.join(", ")
    }
}

fn threads(all_threads: bool) -> &'static str {
    if all_threads {
        "every thread of the worker"
    } else {
        "the confining thread only (older threads are held by seccomp alone)"
    }
}

fn names<T: Access + std::fmt::Debug>(flags: BitFlags<T>) -> String {
    flags
        .iter()
        .map(|flag| format!("{flag:?}"))
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_abi_names_what_it_enforces_and_misses() {
        assert_eq!(
            enforced(ABI::V1),
            "no file-system access (13 rights denied)"
        );
        assert_eq!(
            enforced(ABI::V7),
            "no file-system access (16 rights denied), no network (BindTcp|ConnectTcp), \
             scoped: AbstractUnixSocket|Signal"
        );
        assert_eq!(
            missing(ABI::V7),
            "file-system rights ResolveUnix, network rights BindUdp|ConnectSendUdp, \
             all-threads enforcement (ABI v8)"
        );
        assert_eq!(missing(REQUESTED_ABI), "nothing");
    }
}
