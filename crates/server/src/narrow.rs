//! Narrowing a call to some of its function's implementations, by rewriting it: `Z7K1`
//! becomes the function's Z8 inline, with `Z8K4` holding only the chosen implementations.
//! `Z8K5` (the identity) still names the function, so evaluators see the same function name
//! and the metadata the same implementation IDs.
//!
//! Testers run each tester once per implementation this way ([`crate::testers`]).
//!
//! Also here: [`ApprovedOnly`], the access rule of `calls = "approved"` for anonymous callers,
//! which the orchestrator applies to every implementation it is about to run.

use zeval_zobject::Map;
use zeval_zobject::Value;
use zeval_zobject::build::{ref_zid, type_zid};
use zeval_zobject::ident::is_reference;

use std::collections::HashMap;
use std::sync::Arc;

use zeval_orchestrator::{ImplementationInfo, ImplementationPolicy};

use crate::{Repository, RepositoryError};

/// The implementations of a canonical or normal Z8 (`Z8K4`), in list order.
pub fn implementations(z8: &Value) -> Vec<Value> {
    list(z8.get("Z8K4"))
}

/// The testers of a Z8 (`Z8K3`), in list order.
pub fn testers(z8: &Value) -> Vec<Value> {
    list(z8.get("Z8K3"))
}

/// The items of a canonical benjamin array or a normal typed list.
pub fn list(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(items)) => items.iter().skip(1).cloned().collect(),
        Some(list @ Value::Object(_)) => zeval_zobject::build::list_items(list)
            .map(|items| items.into_iter().cloned().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `call` with `Z7K1` replaced by `z8` whose `Z8K4` holds only `keep` (canonical).
pub fn with_implementations(call: &Value, z8: &Value, keep: &[Value]) -> Value {
    let mut z8 = z8.clone();
    if let Value::Object(m) = &mut z8 {
        let mut list = vec![Value::String("Z14".into())];
        list.extend(keep.iter().cloned());
        m.insert("Z8K4".into(), Value::Array(list));
    }
    let mut call = call.clone();
    if let Value::Object(m) = &mut call {
        m.insert("Z7K1".into(), z8);
    }
    call
}

/// The function ZID a call names in `Z7K1`, when it is a reference.
pub fn called_function(call: &Value) -> Option<&str> {
    ref_zid(call.get("Z7K1")?)
}

/// The value of a stored object (`Z2K2`).
pub fn stored_value(
    repository: &dyn Repository,
    zid: &str,
) -> Result<Option<Value>, RepositoryError> {
    Ok(repository.get(zid)?.and_then(|z2| match z2 {
        Value::Object(mut m) => m.remove("Z2K2"),
        _ => None,
    }))
}

/// The access rule for an anonymous caller under `calls = "approved"`, handed to the
/// orchestrator, which asks it before it runs any implementation, however the call reached
/// it (nested calls, inline functions, type validators, calls that code returned, objects
/// fetched from the wiki):
///
/// - a catalogue function's own built-in implementations always run (they are this
///   program's own code); a built-in any other function names is approved like any other
///   implementation;
/// - any other implementation runs only when it is a stored object (given by ZID), it is an
///   implementation of the function being called (`Z14K1`), an admin approved its current
///   revision (editing it withdraws the approval), and the copy the request read is that
///   revision ([`ImplementationPolicy::allows_as_read`]); a composition, when what it
///   refers to are the catalogue's objects, functions and types ([`DEFINITIONS`]);
/// - so inline implementations (code or compositions written into the request) and objects
///   that only exist on the wiki never run for an anonymous caller.
///
/// - a function given inline (a Z8 in `Z7K1`, as testers narrow calls) runs stored
///   implementations only when its signature (argument types and keys, return type) is the
///   stored function's that its `Z8K5` names: reviewed code runs under the signature it was
///   reviewed with, and a caller cannot make an approved C or Rust implementation compile
///   again at every call by naming its arguments anew; and only the implementations that
///   stored function lists now (one taken out of its list does not run).
///
/// One is made per request, and it remembers its answers: a recursive composition runs the
/// same implementation thousands of times, and the store is asked once.
pub struct ApprovedOnly {
    repository: Arc<dyn Repository>,
    /// `(function, implementation)` → the answer.
    decided: std::sync::Mutex<HashMap<(String, String), Result<(), String>>>,
    /// Function → its stored signature and implementations, or why there is none: read for
    /// functions not called by their own identity ([`ImplementationPolicy::allows_signature`]).
    signatures: std::sync::Mutex<HashMap<String, Result<StoredFunction, String>>>,
    /// Implementation → its approved revision, as first read; `None` when it had none. What
    /// every copy the request runs must be.
    approved: std::sync::Mutex<HashMap<String, Option<ApprovedRevision>>>,
    /// Stored object an approved implementation refers to → whether it is a definition
    /// ([`definition_refused`]).
    definitions: std::sync::Mutex<HashMap<String, Result<(), String>>>,
    /// Implementations whose copy in the object cache this request had dropped (once each:
    /// every drop makes fetches running at that moment, anyone's, go uncached).
    forgotten: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Whether a check failed on the store ([`ImplementationPolicy::could_not_check`]).
    unchecked: std::sync::atomic::AtomicBool,
    /// Stored object a kept signature pins → its pin as this request first read it (through
    /// the object cache, as calls read it; [`zeval_zobject::signature::pin`]): every approved
    /// implementation the request checks is compared with the same copy, and the answer
    /// depends on each ([`ImplementationPolicy::objects_read`]).
    pins: std::sync::Mutex<HashMap<String, Value>>,
}

/// An implementation's approved revision, as far as the rule needs it.
struct ApprovedRevision {
    /// Its value (`Z2K2`, canonical).
    value: Value,
    /// Its function's signature when approved ([`zeval_store::Approval::signature`]).
    signature: Option<Value>,
}

/// A function as stored, as far as the rule needs it.
struct StoredFunction {
    /// [`zeval_orchestrator::signature_of`] its canonical form.
    signature: Value,
    /// The ZIDs its `Z8K4` lists.
    implementations: Vec<String>,
}

impl ApprovedOnly {
    /// The rule over `repository`'s approvals, for one request.
    pub fn new(repository: Arc<dyn Repository>) -> Self {
        ApprovedOnly {
            repository,
            decided: Default::default(),
            signatures: Default::default(),
            approved: Default::default(),
            definitions: Default::default(),
            forgotten: Default::default(),
            unchecked: Default::default(),
            pins: Default::default(),
        }
    }
}

impl ImplementationPolicy for ApprovedOnly {
    fn allows(
        &self,
        function_zid: &str,
        implementation: &ImplementationInfo,
    ) -> Result<(), String> {
        // The program's own code: a catalogue function's own built-in implementations
        // (written into its preloaded definition, or named by ZID in its `Z8K4`). A built-in
        // an editor's function names (a Z14 of their own, or the catalogue's implementation
        // of another function) is approved like any other implementation: it ran unapproved
        // until 2026-12-06, so an editor could put Echo in place of an approved function's
        // reviewed implementations. (A function whose `Z8K5` names a catalogue function
        // runs its built-ins only under that function's signature: `allows_signature`.)
        if implementation.kind == "BuiltIn"
            && zeval_catalogue::get(function_zid).is_some()
            && implementation
                .zid
                .as_deref()
                .is_none_or(|zid| catalogue_lists(function_zid, zid))
        {
            return Ok(());
        }
        let Some(zid) = implementation.zid.as_deref() else {
            return Err(format!(
                "an inline implementation of {function_zid} cannot be approved; anonymous calls \
                 may only run approved implementations (calls = \"approved\"): send a bearer \
                 token"
            ));
        };
        let key = (function_zid.to_owned(), zid.to_owned());
        let known = self
            .decided
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let verdict = match known {
            Some(verdict) => verdict,
            None => {
                // Decided outside the lock: a check may read the store, and the request's
                // other threads (code calling back in) ask too.
                // With room on the stack: the check reads, compares and drops stored objects
                // (an approval's pinned types, as deep as the parser allows), and may first
                // be made at the bottom of a deep recursion.
                let verdict = zeval_orchestrator::with_room_for_stored_objects(|| {
                    self.check_stored(function_zid, zid)
                });
                self.decided
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(key)
                    .or_insert(verdict)
                    .clone()
            }
        };
        verdict.and_then(|()| self.listed(function_zid, zid))
    }

    fn allows_signature(&self, function_zid: &str, signature: &Value) -> Result<(), String> {
        self.with_stored_function(function_zid, |stored| match stored {
            Ok(stored) if stored.signature == *signature => Ok(()),
            Ok(_) => Err(format!(
                "the function given inline declares other arguments or another return type \
                 than {function_zid}; anonymous calls may only run approved implementations \
                 under their function's own signature (calls = \"approved\"): send a bearer \
                 token"
            )),
            Err(why) => Err(why.clone()),
        })
    }

    /// A function called by its own identity runs under the signature this request read
    /// (`signature`), from a copy that a cluster's node may hold for seconds after the store
    /// has another: the signature approvals are checked against is the store's
    /// (`check_signature_kept`), so the copy must declare it. Else the copy is
    /// dropped, and the next request reads the function anew.
    fn allows_signature_as_read(
        &self,
        function_zid: &str,
        signature: &Value,
    ) -> Result<(), String> {
        if zeval_catalogue::get(function_zid).is_some() {
            return Ok(());
        }
        let verdict = self.with_stored_function(function_zid, |stored| match stored {
            Ok(stored) => Ok(stored.signature == *signature),
            Err(why) => Err(why.clone()),
        });
        match verdict {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.forget_once(function_zid);
                Err(format!(
                    "the copy of {function_zid} this call read declares other arguments or \
                     another return type than the stored one (it was edited lately); anonymous \
                     calls may only run approved implementations under their function's \
                     signature (calls = \"approved\"): try again, or send a bearer token"
                ))
            }
            Err(why) => Err(why),
        }
    }

    /// The copy about to run must be the approved revision, as first read for this request.
    /// The store's approval is of its current revision, and the copy a request runs comes
    /// from the object cache, which may be older: until 2026-12-06 a node whose cache held
    /// revision N of an implementation (another node's writes reach it after
    /// `SHARED_STORE_OBJECT_MAX_AGE`) ran N for anonymous callers as soon as an admin
    /// approved N + 1; and a nested request (a call from code), which reads its objects anew,
    /// ran an edit made during the request under the approval its caller's check had read.
    fn allows_as_read(&self, zid: &str, read: &Value) -> Result<(), String> {
        if zeval_catalogue::get(zid).is_some() {
            return Ok(());
        }
        let canonical = zeval_zobject::canonicalize(read);
        // Whether the copy is the approved revision, and what that revision's composition
        // refers to.
        let same = self.with_approved(zid, |approved| {
            match (approved.map(|a| &a.value), &canonical) {
                // Not approved at all, or approved as something other than an implementation:
                // `allows` refuses it, in its own words.
                (None, _) => (true, Ok(Vec::new())),
                (Some(approved), _) if type_zid(approved) != Some("Z14") => (true, Ok(Vec::new())),
                (Some(approved), Ok(read)) => (read == approved, referred_to(approved)),
                (Some(_), Err(_)) => (false, Ok(Vec::new())),
            }
        });
        if let Ok(canonical) = canonical {
            zeval_zobject::depth::drop_iteratively(canonical);
        }
        match same {
            Ok((true, Ok(references))) => return self.definitions_only(zid, &references),
            Ok((true, Err(why))) => return Err(self.refusal_of(zid, &why)),
            Ok((false, _)) => {}
            Err(refusal) => return refusal,
        }
        // The copy this node holds is older than the store's (a cluster's node reads again
        // only after seconds) or newer (edited during the request): either way the next
        // request reads it anew, and this refusal is not one to keep.
        self.forget_once(zid);
        Err(format!(
            "the copy of {zid} this call read is not the revision an admin approved (it was \
             edited lately); anonymous calls may only run approved implementations (calls = \
             \"approved\"): try again, or send a bearer token"
        ))
    }

    fn could_not_check(&self) -> bool {
        self.unchecked.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn objects_read(&self) -> Vec<String> {
        let mut read: Vec<String> = {
            let pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
            pins.keys().cloned().collect()
        };
        let definitions = self.definitions.lock().unwrap_or_else(|e| e.into_inner());
        read.extend(definitions.keys().cloned());
        read
    }
}

impl ApprovedOnly {
    /// The refusal of implementation `zid` for `why`.
    fn refusal_of(&self, zid: &str, why: &str) -> String {
        format!(
            "{zid} {why}; anonymous calls may only run approved implementations (calls = \
             \"approved\"): send a bearer token, or ask an admin to approve it"
        )
    }

    /// `Ok` when every stored object approved implementation `zid` refers to
    /// (`references`, [`referred_to`]) is a definition ([`definition_refused`]), as the
    /// store has it now: an approval covers the implementation's own revision, and an
    /// editor may change what it refers to after. Until 2026-12-06 an approved composition
    /// whose body referred to Z10050 answered whatever an editor later made Z10050 compute,
    /// for every anonymous caller. Each object is read once per request.
    fn definitions_only(&self, zid: &str, references: &[String]) -> Result<(), String> {
        for reference in references {
            // As calls read it: the copy a call would run, which a cluster's node may hold
            // for seconds after the store has another.
            let read = || match self.repository.get_as_called(reference) {
                Ok(z2) => Ok(definition_refused(reference, z2.as_ref()).map_or(Ok(()), Err)),
                Err(e) => {
                    tracing::error!(%reference, error = %e, "reading an object failed");
                    Err(self.unchecked_refusal(&|why: &str| {
                        Err(self.refusal_of(zid, &format!("{why}: it refers to {reference}")))
                    }))
                }
            };
            let verdict = remembered(&self.definitions, reference, read, Result::clone);
            match verdict {
                Ok(verdict) => verdict.map_err(|why| self.refusal_of(zid, &why))?,
                Err(refusal) => return refusal,
            }
        }
        Ok(())
    }

    /// Drops the object cache's copy of `zid`, which this request found is not the store's
    /// (once per request: every drop makes fetches running at that moment, anyone's, go
    /// uncached); the refusal is not one to keep.
    fn forget_once(&self, zid: &str) {
        if self
            .forgotten
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(zid.to_owned())
        {
            self.repository.forget_cached(zid);
        }
        self.unchecked
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A refusal for a check the store could not answer, noted as such.
    fn unchecked_refusal<T>(
        &self,
        refused: &impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, String> {
        self.unchecked
            .store(true, std::sync::atomic::Ordering::Relaxed);
        refused("could not be checked")
    }

    /// A function not called by its own identity (given inline, or stored under another ZID,
    /// as [`ImplementationPolicy::allows_signature`] saw it) runs only the implementations
    /// the function its `Z8K5` names lists now. Until 2026-12-06 it ran any approved
    /// implementation of that function: one an editor had taken out of the function's list
    /// (as Wikifunctions disconnects a faulty implementation) still ran for every anonymous
    /// caller who named it in an inline copy of the function. Once the request has read the
    /// stored function so, its list holds for the request's calls of it by its own identity
    /// too (their copy of the function may be older than the store's).
    fn listed(&self, function_zid: &str, zid: &str) -> Result<(), String> {
        let signatures = self.signatures.lock().unwrap_or_else(|e| e.into_inner());
        match signatures.get(function_zid) {
            Some(Ok(stored)) if !stored.implementations.iter().any(|listed| listed == zid) => {
                Err(format!(
                    "{zid} is not among the implementations {function_zid} lists; anonymous \
                     calls may only run the approved implementations a function lists \
                     (calls = \"approved\"): send a bearer token"
                ))
            }
            _ => Ok(()),
        }
    }

    /// The signature and implementations of stored function `function_zid`.
    fn stored_signature(&self, function_zid: &str) -> Result<StoredFunction, String> {
        let refused = |why: &str| {
            Err(format!(
                "{function_zid} {why}; anonymous calls may only run approved implementations \
                 (calls = \"approved\"): send a bearer token"
            ))
        };
        let z8 = match zeval_catalogue::get(function_zid) {
            Some(z2) => z2.get("Z2K2").cloned(),
            None => match stored_value(self.repository.as_ref(), function_zid) {
                Ok(z8) => z8,
                Err(e) => {
                    tracing::error!(%function_zid, error = %e, "reading a function failed");
                    return self.unchecked_refusal(&refused);
                }
            },
        };
        let Some(z8) = z8 else {
            return refused("is not a stored function");
        };
        let Ok(z8) = zeval_zobject::canonicalize(&z8) else {
            return refused("is not a well-formed function");
        };
        Ok(StoredFunction {
            signature: zeval_orchestrator::signature_of(&z8),
            implementations: implementations(&z8)
                .iter()
                .filter_map(|listed| listed.as_str().map(str::to_owned))
                .collect(),
        })
    }

    /// `look` at [`Self::approved_revision`] as first read for this request. Read where the
    /// orchestrator gives the policy room on the stack ([`ImplementationPolicy::allows_as_read`]
    /// comes first), and only looked at after: copying or dropping a stored object recurses
    /// once per level.
    fn with_approved<T>(
        &self,
        zid: &str,
        look: impl FnOnce(Option<&ApprovedRevision>) -> T,
    ) -> Result<T, Result<(), String>> {
        remembered(
            &self.approved,
            zid,
            || self.approved_revision(zid),
            |approved| look(approved.as_ref()),
        )
    }

    /// The approved current revision of `zid`, `None` when it has none; or the refusal of a
    /// store that could not answer.
    fn approved_revision(&self, zid: &str) -> Result<Option<ApprovedRevision>, Result<(), String>> {
        match self.repository.approved_object(zid) {
            Ok(approved) => Ok(approved.and_then(|approved| {
                let value = match approved.object {
                    Value::Object(mut m) => m.remove("Z2K2")?,
                    _ => return None,
                };
                Some(ApprovedRevision {
                    value: zeval_zobject::canonicalize(&value).unwrap_or(value),
                    signature: approved.signature,
                })
            })),
            Err(e) => {
                // A store too busy to answer by the call's deadline is the load, not a fault.
                if matches!(e, crate::RepositoryError::Busy(_)) {
                    tracing::warn!(%zid, error = %e, "checking an approval failed");
                } else {
                    tracing::error!(%zid, error = %e, "checking an approval failed");
                }
                Err(self.unchecked_refusal(&|why: &str| {
                    Err(format!(
                        "{zid} {why}; anonymous calls may only run approved implementations \
                         (calls = \"approved\"): send a bearer token, or ask an admin to \
                         approve it"
                    ))
                }))
            }
        }
    }

    /// What the store says about stored implementation `zid` of `function_zid`: its approved
    /// revision, read in one go (read apart from the approval, an edit in between was taken
    /// for what the admin approved).
    fn check_stored(&self, function_zid: &str, zid: &str) -> Result<(), String> {
        if zeval_catalogue::get(zid).is_some() {
            if !catalogue_lists(function_zid, zid) {
                let why = format!("is not an implementation of {function_zid}");
                return Err(self.refusal_of(zid, &why));
            }
            return Ok(());
        }
        let verdict = self.with_approved(zid, |approved| {
            let Some(ApprovedRevision {
                value: z14,
                signature,
            }) = approved
            else {
                return Err("is not approved".to_owned());
            };
            if type_zid(z14) != Some("Z14") {
                return Err("is not an implementation (Z14)".to_owned());
            }
            if z14.get("Z14K1").and_then(ref_zid) != Some(function_zid) {
                return Err(format!("is not an implementation of {function_zid}"));
            }
            // Approved before approvals checked this, or written into the store by other
            // means.
            code_written_in(z14)?;
            Ok(signature.clone())
        });
        match verdict {
            Ok(Ok(signature)) => self.check_signature_kept(function_zid, zid, signature),
            Ok(Err(why)) => Err(self.refusal_of(zid, &why)),
            Err(refusal) => refusal,
        }
    }

    /// Reviewed code runs only under the signature its function had when it was approved
    /// (`kept`, [`zeval_store::Approval::signature`]): until 2026-12-07 an editor who changed
    /// a function's argument types or keys, or its return type, had every anonymous call of
    /// it run the approved code under them (code written for a string given a list; a C or
    /// Rust implementation compiled anew at call time). The function as the store has it
    /// now, as this request first read it: every call of the function in the request runs
    /// under that signature ([`ImplementationPolicy::allows_signature`] and
    /// [`ImplementationPolicy::allows_signature_as_read`] see to it). A catalogue function's
    /// signature is the program's own.
    ///
    /// The stored types the signature names, too, must be as they were when approved
    /// ([`zeval_zobject::signature::pinned`]), as this request reads them: until 2026-12-07
    /// an editor who redefined one (its keys, its validator) left the function unchanged,
    /// and the approved code was given values it was not reviewed for.
    fn check_signature_kept(
        &self,
        function_zid: &str,
        zid: &str,
        kept: Option<Value>,
    ) -> Result<(), String> {
        if zeval_catalogue::get(function_zid).is_some() {
            return Ok(());
        }
        let Some(kept) = kept else {
            return Err(self.refusal_of(
                zid,
                &format!(
                    "was approved before approvals kept its function's signature, or when \
                     {function_zid} was not stored (approving it again keeps it)"
                ),
            ));
        };
        let mut kept_signature = kept;
        let kept_definitions = match &mut kept_signature {
            Value::Object(m) => m.remove("definitions"),
            _ => None,
        };
        self.with_stored_function(function_zid, |stored| match stored {
            Ok(stored) if stored.signature == kept_signature => Ok(()),
            Ok(_) => Err(self.refusal_of(
                zid,
                &format!(
                    "was approved when {function_zid} had other arguments or another return \
                     type (approving it again accepts them)"
                ),
            )),
            Err(why) => Err(why.clone()),
        })?;
        let kept_definitions = match kept_definitions {
            Some(Value::Object(definitions)) => Some(definitions),
            _ => None,
        };
        let changed = zeval_zobject::signature::first_changed(
            &kept_signature,
            kept_definitions.as_ref().unwrap_or(&Map::new()),
            |name: &str| zeval_catalogue::get(name).is_some(),
            |name: &str| self.pin_as_read(name),
        );
        let changed = match changed {
            Ok(None) => return Ok(()),
            Ok(Some(changed)) => changed,
            Err(e) => {
                tracing::error!(%function_zid, error = %e, "reading a function's types failed");
                return self.unchecked_refusal(&|why: &str| Err(self.refusal_of(zid, why)));
            }
        };
        if kept_definitions.is_none() {
            return Err(self.refusal_of(
                zid,
                &format!(
                    "was approved before approvals kept the stored types {function_zid} names \
                     (approving it again keeps them)"
                ),
            ));
        }
        let why = match self.compared_with_store(&changed) {
            Ok(Compared::Same) => format!(
                "was approved when the types {function_zid} names were defined otherwise \
                 ({changed} differs; approving it again accepts them)"
            ),
            Ok(Compared::NotStored) => format!(
                "runs under {function_zid}, whose types name {changed}, which is not stored \
                 (approved code runs for anonymous callers only under stored types)"
            ),
            Ok(Compared::Older) => format!(
                "runs under {function_zid}, whose types name {changed}; the copy of it this \
                 call read is not the store's (it was edited lately): try again"
            ),
            Err(e) => {
                tracing::error!(%changed, error = %e, "reading a type failed");
                return self.unchecked_refusal(&|why: &str| Err(self.refusal_of(zid, why)));
            }
        };
        Err(self.refusal_of(zid, &why))
    }

    /// The pin of stored object `zid` as this request first read it, through the object
    /// cache as calls read it ([`Self::pins`]).
    fn pin_as_read(&self, zid: &str) -> Result<Option<Value>, RepositoryError> {
        let read = || -> Result<Value, RepositoryError> {
            let value = self
                .repository
                .get_as_called(zid)?
                .and_then(|mut z2| z2.get_mut("Z2K2").map(Value::take));
            Ok(zeval_zobject::signature::pin(value))
        };
        // `first_changed` pins what it is given: the pin of a pin is itself.
        remembered(&self.pins, zid, read, |pin| Some(pin.clone()))
    }

    /// How the copy of `zid` this request read ([`Self::pins`]) compares with the store's.
    /// One older than the store's (a cluster node's cache keeps a copy up to
    /// `SHARED_STORE_OBJECT_MAX_AGE`) is dropped, so the next request reads the store's.
    fn compared_with_store(&self, zid: &str) -> Result<Compared, RepositoryError> {
        let Some(stored) = stored_value(self.repository.as_ref(), zid)? else {
            return Ok(Compared::NotStored);
        };
        let stored = zeval_zobject::signature::pin(Some(stored));
        let as_read = self.pin_as_read(zid)?;
        if as_read.as_ref() == Some(&stored) {
            return Ok(Compared::Same);
        }
        self.forget_once(zid);
        Ok(Compared::Older)
    }
}

/// Why a type an approval pinned differs, by how the copy a request read compares with the
/// store's ([`ApprovedOnly::compared_with_store`]): each case asks the caller for something
/// else (an approval, nothing, a retry).
enum Compared {
    /// The same: the type was redefined since the approval.
    Same,
    /// The store has none (the call found one elsewhere: the wiki).
    NotStored,
    /// The request's copy is not the store's.
    Older,
}

impl ApprovedOnly {
    /// `look` at stored function `function_zid` ([`Self::stored_signature`]) as first read
    /// for this request.
    fn with_stored_function<T>(
        &self,
        function_zid: &str,
        look: impl FnOnce(&Result<StoredFunction, String>) -> T,
    ) -> T {
        let read = || Ok::<_, std::convert::Infallible>(self.stored_signature(function_zid));
        match remembered(&self.signatures, function_zid, read, look) {
            Ok(looked) => looked,
            Err(never) => match never {},
        }
    }
}

/// The most stored objects one approved implementation may refer to: each is read once per
/// request that runs it.
pub const MAX_REFERENCES: usize = 256;

/// What stored objects an approved implementation may refer to (`Z2K2`'s type): functions
/// and types. Their own use passes the rule in turn (a function's implementations run only
/// when approved; a type's keys are never evaluated as values, its validator is a function),
/// where another object's value would be whatever an editor wrote into it last, computed
/// where it is used (a Z7 there, or in a field of a language or an implementation passed as
/// data, is evaluated wherever the object is referred to). The catalogue's objects (its
/// languages among them) are the program's own.
pub const DEFINITIONS: [&str; 2] = ["Z8", "Z4"];

/// The stored objects (not the catalogue's) canonical implementation `z14` refers to, in
/// its composition (`Z14K2`), each once; or why they are too many ([`MAX_REFERENCES`]).
/// Code is written in the implementation itself ([`code_written_in`]).
pub fn referred_to(z14: &Value) -> Result<Vec<String>, String> {
    let mut found: Vec<String> = Vec::new();
    let mut stack: Vec<&Value> = z14.get("Z14K2").into_iter().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::String(text)
                if is_reference(text)
                    && zeval_catalogue::get(text).is_none()
                    && !found.iter().any(|known| known == text) =>
            {
                if found.len() == MAX_REFERENCES {
                    return Err(format!(
                        "refers to more than {MAX_REFERENCES} stored objects"
                    ));
                }
                found.push(text.clone());
            }
            Value::Array(items) => stack.extend(items),
            // A string written out is text, not a reference.
            Value::Object(m) if m.get("Z1K1").and_then(Value::as_str) == Some("Z6") => {}
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    Ok(found)
}

/// `None` when `z2`, the persistent object `zid` as read, is a definition an approved
/// implementation may refer to ([`DEFINITIONS`]); else why not.
pub fn definition_refused(zid: &str, z2: Option<&Value>) -> Option<String> {
    let Some(value) = z2.and_then(|z2| z2.get("Z2K2")) else {
        return Some(format!("refers to {zid}, which does not exist"));
    };
    let kind = match type_zid(value) {
        Some(kind) if DEFINITIONS.contains(&kind) => return None,
        Some(kind) => format!("a {kind}"),
        None => "a value".to_owned(),
    };
    Some(format!(
        "refers to {zid}, {kind} an editor may change after the approval (an approved \
         implementation may refer only to functions and types)"
    ))
}

/// `look` at `memo`'s entry for `key`, made by `read` when the request has none yet (or the
/// error `read` gives, kept nowhere). `read` runs without the lock: another thread of the
/// request (a call from code answered on a callback) waits for no store read but its own,
/// and [`ApprovedOnly::listed`] takes the signatures' lock at every run. The first read kept
/// wins.
fn remembered<V, T, E>(
    memo: &std::sync::Mutex<HashMap<String, V>>,
    key: &str,
    read: impl FnOnce() -> Result<V, E>,
    look: impl FnOnce(&V) -> T,
) -> Result<T, E> {
    {
        let memo = memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = memo.get(key) {
            return Ok(look(value));
        }
    }
    let value = read()?;
    let mut memo = memo.lock().unwrap_or_else(|e| e.into_inner());
    Ok(look(memo.entry(key.to_owned()).or_insert(value)))
}

/// Whether the catalogue's function `function_zid` lists `zid` among its implementations
/// (`Z8K4`). Not the implementation's own `Z14K1`: Z123 runs Z220, an implementation of
/// Z120.
fn catalogue_lists(function_zid: &str, zid: &str) -> bool {
    zeval_catalogue::get(function_zid)
        .and_then(|z2| z2.get("Z2K2")?.get("Z8K4")?.as_array())
        .is_some_and(|listed| listed.iter().skip(1).any(|item| item.as_str() == Some(zid)))
}

/// `Ok` when the code of implementation `z14` (canonical) is written in it: its `Z14K3` a
/// code object (Z16) whose source (`Z16K2`) is a string and whose language (`Z16K1`) is one
/// of the catalogue's, or a language object written out. Else why not.
///
/// An approval covers one revision of the implementation. The schema also lets the code be a
/// call or an argument reference, and the source or language a reference to another stored
/// object, which any editor may change after the approval: an approved implementation whose
/// source was `"Z20001"` ran whatever an editor later wrote into Z20001, for every anonymous
/// caller. Compositions and built-ins (no `Z14K3`) are left alone: what a composition calls
/// passes this rule in turn.
pub fn code_written_in(z14: &Value) -> Result<(), String> {
    let Some(code) = z14.get("Z14K3") else {
        return Ok(());
    };
    if type_zid(code) != Some("Z16") {
        return Err(
            "has code (Z14K3) that is not written in it but computed or referred to".into(),
        );
    }
    let is_text = |value: &Value| match value {
        Value::String(text) => !is_reference(text),
        value => type_zid(value) == Some("Z6") && value.get("Z6K1").is_some_and(Value::is_string),
    };
    let language_written_in = match code.get("Z16K1") {
        Some(Value::String(zid)) => zeval_catalogue::get(zid).is_some(),
        Some(language) => {
            type_zid(language) == Some("Z61") && language.get("Z61K1").is_some_and(is_text)
        }
        None => false,
    };
    if !language_written_in {
        return Err(
            "names its code's language (Z16K1) by a reference to an object that is not a \
             built-in language"
                .into(),
        );
    }
    if !code.get("Z16K2").is_some_and(is_text) {
        return Err("has a source (Z16K2) that is not a string written in it".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_composition_refers_to_the_stored_objects_it_names_not_to_text_or_built_ins() {
        let z14 = json!({"Z1K1": "Z14", "Z14K1": "Z10000", "Z14K2": {
            "Z1K1": "Z7", "Z7K1": "Z10001",
            "Z10001K1": {"Z1K1": "Z6", "Z6K1": "Z10002"},
            "Z10001K2": ["Z6", "Z10003", "text", "Z10001"],
            "Z10001K3": {"Z1K1": "Z9", "Z9K1": "Z10004"},
        }});
        let mut found = referred_to(&z14).unwrap();
        found.sort();
        assert_eq!(found, ["Z10001", "Z10003", "Z10004"]);
        // Code refers to nothing; the cap holds.
        assert!(
            referred_to(&json!({"Z1K1": "Z14", "Z14K3": "Z10005"}))
                .unwrap()
                .is_empty()
        );
        let many: Vec<Value> = (0..=MAX_REFERENCES)
            .map(|i| json!(format!("Z{}", 20_000 + i)))
            .collect();
        let z14 = json!({"Z1K1": "Z14", "Z14K2": many});
        assert!(referred_to(&z14).unwrap_err().contains("more than 256"));
    }

    #[test]
    fn narrowing_keeps_identity_and_arguments() {
        let z8 = json!({"Z1K1": "Z8", "Z8K4": ["Z14", "Z10001", "Z10002"], "Z8K5": "Z10000"});
        let call = json!({"Z1K1": "Z7", "Z7K1": "Z10000", "Z10000K1": "abc"});
        let narrowed = with_implementations(&call, &z8, &[json!("Z10002")]);
        assert_eq!(narrowed["Z7K1"]["Z8K4"], json!(["Z14", "Z10002"]));
        assert_eq!(narrowed["Z7K1"]["Z8K5"], json!("Z10000"));
        assert_eq!(narrowed["Z10000K1"], json!("abc"));
        assert_eq!(implementations(&z8), vec![json!("Z10001"), json!("Z10002")]);
    }
}
