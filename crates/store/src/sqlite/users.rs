//! Users with bearer tokens, and approvals of implementations.
//!
//! A token is 32 random bytes from the operating system, shown once in hex (64 characters).
//! Only its SHA-256 is stored, so the database file never holds a usable token.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use zeval_zobject::Value;
use zeval_zobject::signature::{MAX_PINNED, PinError};

use super::{BUSY_TIMEOUT, SqliteStore, current_revision, db_error, immediate, now_ms};
use crate::StoreError;

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;

/// The longest user name accepted.
pub const MAX_USER_NAME_CHARS: usize = 100;

/// What a user may do. Editors write objects; admins also approve implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Writes objects and approves implementations.
    Admin,
    /// Writes objects.
    Editor,
}

impl Role {
    /// `"admin"` or `"editor"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            other => Err(StoreError::InvalidUser(format!(
                "unknown role {other:?} (admin or editor)"
            ))),
        }
    }
}

/// A user known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The unique name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
}

impl User {
    /// `Ok` for an admin, else [`StoreError::Forbidden`]: what approving takes.
    pub(crate) fn require_admin(&self) -> Result<(), StoreError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(StoreError::Forbidden(format!(
                "{} is not an admin",
                self.name
            )))
        }
    }
}

/// An implementation's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The revision that was approved.
    pub revision: u64,
    /// The admin who approved it.
    pub approved_by: String,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The signature of the function the implementation implements (`Z14K1`), as the store
    /// had it when approved, with what the stored types it names were then
    /// ([`zeval_zobject::signature::pinned`]): reviewed code was reviewed under it, and runs
    /// for anonymous callers only while the function and those types keep it. `None` when the
    /// function was not stored then (a catalogue function's cannot change), or for an
    /// approval made before approvals kept it (2026-12-07).
    pub signature: Option<Value>,
}

/// What an admin reviewed before approving an implementation
/// ([`SqliteStore::approve_revision`]): each revision given must still be current when the
/// approval lands, else nothing is approved ([`StoreError::Conflict`] with the current one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewed {
    /// The implementation's revision.
    pub revision: Option<u64>,
    /// The function it implements (`Z14K1`, which must be this ZID) and that function's
    /// revision, whose signature the approval keeps ([`Approval::signature`]): without it,
    /// an edit of the function saved between the admin's review and the approval is what
    /// the approved code runs under.
    pub function: Option<(String, u64)>,
    /// The tag ([`signature_tag`]) of the signature the approval would keep, with what the
    /// stored objects its types name were, as the admin reviewed it
    /// ([`SqliteStore::approval_preview`]): without it, a type an editor redefined between
    /// the review and the approval is what the approval pins.
    pub signature: Option<String>,
}

/// The tag of a kept signature (its JSON text; `None`: none kept): hex SHA-256.
pub fn signature_tag(kept: Option<&str>) -> String {
    hex::encode(Sha256::digest(kept.unwrap_or("null").as_bytes()))
}

/// Unless the approval would keep what the admin reviewed (when named), `Changed`.
pub(crate) fn check_signature_reviewed(
    zid: &str,
    kept: Option<&str>,
    reviewed: Option<&str>,
) -> Result<(), StoreError> {
    let now = signature_tag(kept);
    match reviewed {
        Some(tag) if tag != now => Err(StoreError::Changed(format!(
            "the signature of {zid}'s function, or a type it names, is not as reviewed (the \
             tag of what an approval would keep is {now} now, not {tag}): review it again"
        ))),
        _ => Ok(()),
    }
}

/// What approving an implementation now would keep ([`SqliteStore::approval_preview`]): what
/// an admin reviews, and names when approving ([`Reviewed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalPreview {
    /// The implementation's current revision.
    pub revision: u64,
    /// The function it implements and that function's current revision (`None`: it names
    /// none that is stored).
    pub function: Option<(String, u64)>,
    /// The signature the approval would keep, with what the stored objects its types name
    /// are ([`Approval::signature`]).
    pub signature: Option<Value>,
    /// Its tag ([`signature_tag`]), for [`Reviewed::signature`].
    pub signature_tag: String,
}

/// The revision and JSON of implementation `zid` from its row (revision, type, JSON):
/// `NotFound`, or `Invalid` for an object that is not a Z14.
pub(crate) fn implementation_row(
    zid: &str,
    row: Option<(i64, Option<String>, String)>,
) -> Result<(i64, String), StoreError> {
    match row {
        None => Err(StoreError::NotFound(zid.to_string())),
        Some((_, ty, _)) if ty.as_deref() != Some("Z14") => Err(StoreError::Invalid(format!(
            "{zid} is not an implementation (Z14)"
        ))),
        Some((revision, _, json)) => Ok((revision, json)),
    }
}

/// The revision and JSON of implementation `zid` as `conn` reads it ([`implementation_row`]).
fn stored_implementation(
    conn: &rusqlite::Connection,
    zid: &str,
) -> Result<(i64, String), StoreError> {
    let row: Option<(i64, Option<String>, String)> = conn
        .query_row(
            "SELECT revision, type, json FROM objects WHERE zid = ?1",
            [zid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db_error)?;
    implementation_row(zid, row)
}

/// The stored JSON of `zid` as `conn` reads it.
fn object_json(conn: &rusqlite::Connection, zid: &str) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT json FROM objects WHERE zid = ?1", [zid], |r| {
        r.get(0)
    })
    .optional()
    .map_err(db_error)
}

/// The ZID of the function implementation `z14` (a stored Z2) names.
pub(crate) fn implemented_function(z14: &Value) -> Option<String> {
    z14.get("Z2K2")
        .and_then(|value| value.get("Z14K1"))
        .and_then(zeval_zobject::build::ref_zid)
        .map(str::to_owned)
}

/// Unless the function implementation `z14` (a stored Z2) implements is the one the admin
/// reviewed (when named), `Invalid`; unless it is still at the revision reviewed, as
/// `current_revision` reads it, `Conflict`.
pub(crate) fn check_function_reviewed(
    z14: &Value,
    reviewed: Option<&(String, u64)>,
    current_revision: impl FnOnce(&str) -> Result<Option<u64>, StoreError>,
) -> Result<(), StoreError> {
    let Some((reviewed, expected)) = reviewed else {
        return Ok(());
    };
    let function = z14
        .get("Z2K2")
        .and_then(|value| value.get("Z14K1"))
        .and_then(zeval_zobject::build::ref_zid);
    if function != Some(reviewed.as_str()) {
        return Err(StoreError::Invalid(format!(
            "the implementation implements {}, not {reviewed}",
            function.unwrap_or("no stored function")
        )));
    }
    match current_revision(reviewed)? {
        Some(current) if current == *expected => Ok(()),
        Some(current) => Err(StoreError::Conflict {
            zid: reviewed.clone(),
            base: *expected,
            current: Some(current),
        }),
        None => Err(StoreError::Invalid(format!("{reviewed} is not stored"))),
    }
}

/// An approved implementation as [`SqliteStore::approved_object`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedObject {
    /// Its current revision (a Z2), the one approved.
    pub object: Value,
    /// Its function's signature when approved ([`Approval::signature`]).
    pub signature: Option<Value>,
}

/// The longest signature an approval keeps (its JSON text, with the definitions it pins):
/// the access rule compares it once per request that runs the approved code.
pub const MAX_KEPT_SIGNATURE_BYTES: usize = 256 * 1024;

/// The signature [`Approval::signature`] keeps for implementation `z14` (a stored Z2), with
/// what the stored objects its types name are ([`zeval_zobject::signature::pinned`]):
/// `object_json` reads a stored object (the function its `Z14K1` names, then those) as the
/// approval sees it; a definition whose stored JSON does not parse is pinned as missing.
pub(crate) fn signature_to_keep(
    z14: &Value,
    mut object_json: impl FnMut(&str) -> Result<Option<String>, StoreError>,
) -> Result<Kept, StoreError> {
    let Some(function) = z14
        .get("Z2K2")
        .and_then(|value| value.get("Z14K1"))
        .and_then(zeval_zobject::build::ref_zid)
    else {
        return Ok(Kept::Signature(None));
    };
    let Some(json) = object_json(function)? else {
        return Ok(Kept::Signature(None));
    };
    let Some(signature) = super::parse_stored(function, &json)
        .ok()
        .and_then(|z2| zeval_zobject::signature::of_stored(&z2))
    else {
        return Ok(Kept::Signature(None));
    };
    let is_builtin = |zid: &str| zeval_catalogue::get(zid).is_some();
    let pinned = zeval_zobject::signature::pinned(signature, is_builtin, |zid| {
        Ok(object_json(zid)?
            .and_then(|json| super::parse_stored(zid, &json).ok())
            .and_then(|mut z2| z2.get_mut("Z2K2").map(Value::take)))
    });
    let text = match pinned {
        Ok(signature) => signature.to_string(),
        Err(PinError::LookUp(e)) => return Err(e),
        Err(PinError::TooMany) => {
            return Ok(Kept::TooMuch(format!(
                "the types of {function} name more than {MAX_PINNED} stored objects, too many \
                 to keep the approved code to"
            )));
        }
    };
    if text.len() > MAX_KEPT_SIGNATURE_BYTES {
        return Ok(Kept::TooMuch(format!(
            "the signature of {function}, with the definitions its types name, is {} bytes, \
             more than the {MAX_KEPT_SIGNATURE_BYTES} an approval keeps",
            text.len()
        )));
    }
    Ok(Kept::Signature(Some(text)))
}

/// What an approval keeps ([`signature_to_keep`]).
pub(crate) enum Kept {
    /// The signature as JSON text (`None`: the function is not stored, or not a function).
    Signature(Option<String>),
    /// It would pin more than the rule reads per request: why.
    TooMuch(String),
}

impl Kept {
    /// For a new approval: one that would pin too much is refused.
    pub(crate) fn or_refused(self) -> Result<Option<String>, StoreError> {
        match self {
            Kept::Signature(text) => Ok(text),
            Kept::TooMuch(why) => Err(StoreError::Invalid(why)),
        }
    }

    /// For an approval made before (an upgrade, an older export): one that would pin too
    /// much keeps none, and stays suspended until approved again.
    pub(crate) fn or_none(self) -> Option<String> {
        match self {
            Kept::Signature(text) => text,
            Kept::TooMuch(_) => None,
        }
    }
}

/// [`Approval::signature`] as stored (JSON text).
pub(crate) fn kept_signature(zid: &str, text: Option<String>) -> Result<Option<Value>, StoreError> {
    text.map(|text| super::parse_stored(zid, &text)).transpose()
}

/// A user as stored, for moving a store (`zeval export` / `import`): the token only as its
/// SHA-256, so a moved user keeps their token without it ever being in the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The unique name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The SHA-256 of their token, 64 lower-case hex characters.
    pub token_sha256: String,
    /// When they were added (milliseconds since the epoch).
    pub created_ms: i64,
}

impl UserRecord {
    /// Checks a record read from outside (an export) before it is stored.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        new_token(&self.name)?;
        let hash_is_fine = self.token_sha256.len() == 64
            && self
                .token_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hash_is_fine {
            return Err(StoreError::InvalidUser(format!(
                "the token hash of {:?} is not 64 lower-case hex characters",
                self.name
            )));
        }
        Ok(())
    }
}

impl SqliteStore {
    /// Every user with their token hash, by name (for export).
    pub fn user_records(&self) -> Result<Vec<UserRecord>, StoreError> {
        let conn = self.reader()?;
        let mut statement = conn
            .prepare_cached("SELECT name, role, token_sha256, created_ms FROM users ORDER BY name")
            .map_err(db_error)?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(db_error)?;
        rows.map(|row| {
            let (name, role, token_sha256, created_ms) = row.map_err(db_error)?;
            Ok(UserRecord {
                name,
                role: role.parse()?,
                token_sha256,
                created_ms,
            })
        })
        .collect()
    }

    /// Adds a user as exported, unless the name or the token hash is taken; whether added.
    pub fn restore_user(&self, record: &UserRecord) -> Result<bool, StoreError> {
        record.check()?;
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO users (name, role, token_sha256, created_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    record.name,
                    record.role.as_str(),
                    record.token_sha256,
                    record.created_ms
                ],
            )
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(added == 1)
    }

    /// Every approval, by ZID (for export).
    pub fn approvals(&self) -> Result<Vec<(String, Approval)>, StoreError> {
        let conn = self.reader()?;
        let mut statement = conn
            .prepare_cached(
                "SELECT zid, revision, approved_by, timestamp_ms,
                   CASE WHEN signature_revision = revision THEN signature END
                 FROM approvals ORDER BY zid",
            )
            .map_err(db_error)?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(db_error)?;
        let mut approvals = Vec::new();
        for row in rows {
            let (zid, revision, approved_by, timestamp_ms, signature) = row.map_err(db_error)?;
            let signature = kept_signature(&zid, signature)?;
            approvals.push((
                zid,
                Approval {
                    revision,
                    approved_by,
                    timestamp_ms,
                    signature,
                },
            ));
        }
        Ok(approvals)
    }

    /// Records `approval` of `zid` as given (replacing an earlier one): for import, which
    /// points it at the revision the approved content has in this store. With
    /// `before_signatures` (an export made before approvals kept a signature), it keeps the
    /// one its function has in this store instead of `approval.signature`; else an approval
    /// that kept none (suspended where it was exported) keeps none here either.
    pub fn restore_approval(
        &self,
        zid: &str,
        approval: &Approval,
        before_signatures: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let signature = match before_signatures {
            false => approval.signature.as_ref().map(Value::to_string),
            true => {
                let object = |zid: &str| {
                    tx.query_row("SELECT json FROM objects WHERE zid = ?1", [zid], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()
                    .map_err(db_error)
                };
                match object(zid)? {
                    Some(json) => {
                        signature_to_keep(&super::parse_stored(zid, &json)?, object)?.or_none()
                    }
                    None => None,
                }
            }
        };
        tx.execute(
            "INSERT OR REPLACE INTO approvals
               (zid, revision, approved_by, timestamp_ms, signature, signature_revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?2)",
            params![
                zid,
                approval.revision as i64,
                approval.approved_by,
                approval.timestamp_ms,
                signature
            ],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)
    }

    /// Adds a user and returns their new token (the only time it is available in plain text).
    /// A name that already exists is refused.
    pub fn add_user(&self, name: &str, role: Role) -> Result<String, StoreError> {
        let token = new_token(name)?;
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )
            .map_err(db_error)?;
        if exists {
            return Err(StoreError::UserExists(name.to_string()));
        }
        tx.execute(
            "INSERT INTO users (name, role, token_sha256, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), token_hash(&token), now_ms()],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(token)
    }

    /// The user a bearer token belongs to, or `None` for an unknown token.
    pub fn authenticate(&self, token: &str) -> Result<Option<User>, StoreError> {
        authenticate_on(&*self.reader()?, token)
    }

    /// [`Self::authenticate`] if it can be answered without waiting, else `None` (the caller
    /// then asks [`Self::authenticate`] where waiting is allowed). It never waits: not for a
    /// reader connection (it takes one only if one is free), nor for a lock on the database
    /// (the read runs with no busy timeout; `SQLITE_BUSY`, as while a checkpoint or a
    /// recovery holds a lock, gives `None`). So the server's async threads call it directly
    /// instead of handing the lookup to a blocking thread and back: on this 2-core VM those
    /// two hand-offs were most of the 81 µs a token check took (p50, `zeval bench library`,
    /// 2026-12-05). What it does is a SHA-256 and one indexed read of the small `users`
    /// table, whose pages stay in memory.
    pub fn authenticate_if_free(&self, token: &str) -> Option<Result<Option<User>, StoreError>> {
        let conn = self.free_reader(super::ReadKind::Point)?;
        conn.busy_timeout(Duration::ZERO).ok()?;
        let found = query_user(&conn, token);
        if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
            return Some(Err(db_error(e)));
        }
        match found {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                None
            }
            found => Some(user_of(found)),
        }
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let conn = self.reader()?;
        let mut statement = conn
            .prepare_cached("SELECT name, role FROM users ORDER BY name")
            .map_err(db_error)?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db_error)?;
        rows.map(|row| {
            let (name, role) = row.map_err(db_error)?;
            Ok(User {
                name,
                role: role.parse()?,
            })
        })
        .collect()
    }

    /// Approves the current revision of the implementation `zid`. Only an admin may
    /// ([`StoreError::Forbidden`] otherwise); the object must be a stored Z14.
    ///
    /// An approval covers one revision: writing the implementation again withdraws it, so an
    /// approved implementation cannot be swapped for other code without a new approval. It
    /// keeps the signature its function has now ([`Approval::signature`]), read in the same
    /// transaction.
    pub fn approve(&self, zid: &str, by: &User) -> Result<u64, StoreError> {
        self.approve_revision(zid, by, Reviewed::default())
    }

    /// What approving `zid` now would keep, and the revisions and tag to name when approving
    /// it ([`Reviewed`]), read in one transaction; `Invalid` when the approval would be
    /// refused for what it would keep.
    pub fn approval_preview(&self, zid: &str) -> Result<ApprovalPreview, StoreError> {
        // A scan's reader: up to 65 objects read and parsed, on an anonymous route, so a
        // lookup (a token check, a call's fetch) always finds a reader of its own.
        let conn = self.scan_reader()?;
        let tx = conn.unchecked_transaction().map_err(db_error)?;
        let (revision, json) = stored_implementation(&tx, zid)?;
        let z14 = super::parse_stored(zid, &json)?;
        let function = match implemented_function(&z14) {
            Some(function) => current_revision(&tx, &function)?.map(|at| (function, at)),
            None => None,
        };
        let kept = signature_to_keep(&z14, |object| object_json(&tx, object))?.or_refused()?;
        Ok(ApprovalPreview {
            revision: revision as u64,
            function,
            signature_tag: signature_tag(kept.as_deref()),
            signature: kept_signature(zid, kept)?,
        })
    }

    /// [`Self::approve`], only if the current revisions are those the admin `reviewed`: else
    /// [`StoreError::Conflict`] with the current revision, and nothing is approved. Checked
    /// and written in one transaction.
    pub fn approve_revision(
        &self,
        zid: &str,
        by: &User,
        reviewed: Reviewed,
    ) -> Result<u64, StoreError> {
        by.require_admin()?;
        let mut conn = self.writer();
        let tx = immediate(&mut conn)?;
        let (revision, json) = stored_implementation(&tx, zid)?;
        if let Some(expected) = reviewed.revision
            && expected != revision as u64
        {
            return Err(StoreError::Conflict {
                zid: zid.to_string(),
                base: expected,
                current: Some(revision as u64),
            });
        }
        let z14 = super::parse_stored(zid, &json)?;
        check_function_reviewed(&z14, reviewed.function.as_ref(), |function| {
            current_revision(&tx, function)
        })?;
        let signature = signature_to_keep(&z14, |object| object_json(&tx, object))?.or_refused()?;
        check_signature_reviewed(zid, signature.as_deref(), reviewed.signature.as_deref())?;
        tx.execute(
            "INSERT OR REPLACE INTO approvals
               (zid, revision, approved_by, timestamp_ms, signature, signature_revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?2)",
            params![zid, revision, by.name, now_ms(), signature],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(revision as u64)
    }

    /// Whether the current revision of `zid` is approved.
    pub fn is_approved(&self, zid: &str) -> Result<bool, StoreError> {
        // One read transaction, so the revision and the approval are of the same moment.
        let mut conn = self.reader()?;
        let tx = conn.transaction().map_err(db_error)?;
        let Some(current) = current_revision(&tx, zid)? else {
            return Ok(false);
        };
        Ok(approval(&tx, zid)?.is_some_and(|a| a.revision == current))
    }

    /// The current revision of `zid` (its Z2) when that revision is approved; `None` when
    /// it is not, or `zid` does not exist. One statement, so the object is the revision the
    /// approval is of: read apart, an edit between the two reads ran unreviewed.
    pub fn approved_object(&self, zid: &str) -> Result<Option<ApprovedObject>, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .reader()?
            .prepare_cached(
                "SELECT o.json, CASE WHEN a.signature_revision = a.revision THEN a.signature END
                 FROM objects o JOIN approvals a ON a.zid = o.zid
                 WHERE o.zid = ?1 AND a.revision = o.revision",
            )
            .and_then(|mut s| {
                s.query_row([zid], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .map_err(db_error)?;
        row.map(|(json, signature)| {
            Ok(ApprovedObject {
                object: super::parse_stored(zid, &json)?,
                signature: kept_signature(zid, signature)?,
            })
        })
        .transpose()
    }

    /// The latest approval of `zid`, which may be of an older revision.
    pub fn approval(&self, zid: &str) -> Result<Option<Approval>, StoreError> {
        approval(&*self.reader()?, zid)
    }
}

fn approval(conn: &rusqlite::Connection, zid: &str) -> Result<Option<Approval>, StoreError> {
    let row: Option<(i64, String, i64, Option<String>)> = conn
        .prepare_cached(
            "SELECT revision, approved_by, timestamp_ms,
               CASE WHEN signature_revision = revision THEN signature END
             FROM approvals WHERE zid = ?1",
        )
        .and_then(|mut s| {
            s.query_row([zid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()
        })
        .map_err(db_error)?;
    row.map(|(revision, approved_by, timestamp_ms, signature)| {
        Ok(Approval {
            revision: revision as u64,
            approved_by,
            timestamp_ms,
            signature: kept_signature(zid, signature)?,
        })
    })
    .transpose()
}

/// Checks a new user's name and makes their token.
pub(crate) fn new_token(name: &str) -> Result<String, StoreError> {
    let name_is_fine = !name.trim().is_empty()
        && name.chars().count() <= MAX_USER_NAME_CHARS
        && !name.chars().any(char::is_control);
    if !name_is_fine {
        return Err(StoreError::InvalidUser(format!(
            "a user name must be 1 to {MAX_USER_NAME_CHARS} printable characters"
        )));
    }
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Database(format!("no randomness for a token: {e}")))?;
    Ok(hex::encode(bytes))
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn authenticate_on(conn: &rusqlite::Connection, token: &str) -> Result<Option<User>, StoreError> {
    user_of(query_user(conn, token))
}

/// The name and role of the user whose token this is, as the database has them.
fn query_user(
    conn: &rusqlite::Connection,
    token: &str,
) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached("SELECT name, role FROM users WHERE token_sha256 = ?1")
        .and_then(|mut s| {
            s.query_row([token_hash(token)], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
}

fn user_of(row: rusqlite::Result<Option<(String, String)>>) -> Result<Option<User>, StoreError> {
    row.map_err(db_error)?
        .map(|(name, role)| {
            Ok(User {
                name,
                role: role.parse()?,
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_ones_are_refused() {
        for role in [Role::Admin, Role::Editor] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_token_is_checked_at_once_only_while_a_reader_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
        let token = store.add_user("ed", Role::Editor).unwrap();
        let found = store.authenticate_if_free(&token).unwrap().unwrap();
        assert_eq!(found.map(|user| user.name), Some("ed".to_owned()));
        assert!(matches!(
            store.authenticate_if_free("wrong"),
            Some(Ok(None))
        ));
        let held: Vec<_> = store.readers.iter().map(|r| r.lock().unwrap()).collect();
        assert!(store.authenticate_if_free(&token).is_none());
        drop(held);
        assert!(store.authenticate_if_free(&token).is_some());

        // It reads with no busy timeout, and puts the timeout back for the other reads.
        for reader in &store.readers {
            let timeout: i64 = reader
                .lock()
                .unwrap()
                .query_row("PRAGMA busy_timeout", [], |row| row.get(0))
                .unwrap();
            assert_eq!(timeout, BUSY_TIMEOUT.as_millis() as i64);
        }

        let in_memory = SqliteStore::open_in_memory().unwrap();
        let token = in_memory.add_user("ad", Role::Admin).unwrap();
        let writer = in_memory.writer();
        assert!(in_memory.authenticate_if_free(&token).is_none());
        drop(writer);
        assert!(matches!(
            in_memory.authenticate_if_free(&token),
            Some(Ok(Some(_)))
        ));
    }

    #[test]
    fn tokens_are_64_hex_characters_and_differ() {
        let store = SqliteStore::open_in_memory().unwrap();
        let a = store.add_user("a", Role::Editor).unwrap();
        let b = store.add_user("b", Role::Editor).unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(store.authenticate(&b).unwrap().unwrap().name, "b");
        assert_eq!(store.authenticate("nope").unwrap(), None);
    }

    #[test]
    fn bad_user_names_are_refused() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert!(store.add_user(" ", Role::Editor).is_err());
        assert!(store.add_user("a\nb", Role::Editor).is_err());
        assert!(store.add_user(&"x".repeat(101), Role::Editor).is_err());
    }
}
