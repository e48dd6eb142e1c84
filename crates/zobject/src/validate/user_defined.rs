//! Validation against a user-defined type given as a normal Z4 (the original's
//! `SchemaFactory.createUserDefined`).
//!
//! Each key declared in `Z4K2` that the object has is validated against its declared type:
//! a built-in type by its schema, the type being defined (same identity) or another Z4
//! literal recursively. Other keys, and keys whose type is neither (e.g. a call to a type
//! function other than the one being defined), are not checked, as in the original.

use crate::Value;
use crate::build::{list_items, ref_zid, string_value, type_zid};
use crate::ident::is_built_in_type;

use super::Form;

/// Validates `value` against the user-defined type `normal_z4` (a normal-form Z4 literal).
///
/// Returns the Z5 of the first key whose value does not fit its declared type.
pub fn validate_with_type(value: &Value, normal_z4: &Value, form: Form) -> Result<(), Value> {
    if crate::depth::exceeds(value, crate::depth::MAX_DEPTH) {
        return Err(crate::depth::too_deep_error());
    }
    check(value, normal_z4, form)
}

fn check(value: &Value, z4: &Value, form: Form) -> Result<(), Value> {
    let Some(keys) = z4.get("Z4K2").and_then(list_items) else {
        return Ok(());
    };
    let own_identity = identity(z4);
    for declaration in keys {
        let Some(key) = declaration.get("Z3K2").and_then(string_value) else {
            continue;
        };
        let (Some(key_type), Some(member)) = (declaration.get("Z3K1"), value.get(key)) else {
            continue;
        };
        stacker::maybe_grow(128 * 1024, 2 * 1024 * 1024, || {
            if let Some(zid) = ref_zid(key_type) {
                if super::has_schema(zid, form) {
                    return super::validate(member, zid, form);
                }
                Ok(())
            } else if identity(key_type) == own_identity {
                check(member, z4, form)
            } else if type_zid(key_type) == Some("Z4") {
                check(member, key_type, form)
            } else {
                Ok(())
            }
        })?;
    }
    Ok(())
}

/// The identity of a type (the original's `findIdentity`): a call or a reference is its
/// own identity; a Z4 literal has the identity of its `Z4K1`, unless that is a reference to
/// a user-defined type, in which case the Z4 itself is the identity.
fn identity(ty: &Value) -> &Value {
    match type_zid(ty) {
        Some("Z4") => match ty.get("Z4K1") {
            Some(inner) => {
                let id = identity(inner);
                match ref_zid(id) {
                    Some(zid) if !id.is_string() && !is_built_in_type(zid) => ty,
                    _ => id,
                }
            }
            None => ty,
        },
        _ => ty,
    }
}
