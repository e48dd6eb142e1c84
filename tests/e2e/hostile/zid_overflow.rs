//! Item 8: ZIDs are bounded and allocation never overwrites. `PUT` of ZID i64::MAX used to
//! make the next allocated number overflow, after which every `POST` landed on the same ZID
//! and replaced the previous creator's object.

use serde_json::json;

use super::{Target, one_at_a_time, prefix};
use crate::common::{request, z2};

#[test]
fn huge_zids_are_refused_and_creations_never_overwrite() {
    let _serial = one_at_a_time();
    let mut target = Target::start(&[]);
    let orch = target.orch().to_owned();
    for zid in [
        "Z9223372036854775807",
        "Z9223372036854775808",
        "Z99999999999999999999999999",
    ] {
        let answer = request(
            "PUT",
            &format!("{orch}/v1/objects/{zid}"),
            Some(&target.editor),
            Some(&z2(zid, json!("squatter"))),
        );
        assert_eq!(
            answer.status,
            400,
            "PUT {zid} was not refused: {}",
            prefix(&answer.text)
        );
    }

    // Two creations by two users get two ZIDs, and both objects stay as written.
    let mut created = Vec::new();
    for (token, text) in [
        (&target.editor, "first creation"),
        (&target.admin, "second creation"),
    ] {
        let answer = request(
            "POST",
            &format!("{orch}/v1/objects"),
            Some(token),
            Some(&z2("Z0", json!(text))),
        );
        assert_eq!(answer.status, 201, "POST: {}", prefix(&answer.text));
        let zid = answer.json()["zid"].as_str().unwrap().to_owned();
        created.push((zid, text));
    }
    assert_ne!(
        created[0].0, created[1].0,
        "two creations were given the same ZID"
    );
    for (zid, text) in &created {
        let stored = request("GET", &format!("{orch}/v1/objects/{zid}"), None, None);
        assert_eq!(stored.status, 200, "GET {zid}: {}", stored.text);
        let value = &stored.json()["Z2K2"];
        assert!(
            value == &json!(text) || value["Z6K1"] == json!(text),
            "{zid} holds {value}, not {text:?}"
        );
        let history = request(
            "GET",
            &format!("{orch}/v1/objects/{zid}/history"),
            None,
            None,
        );
        assert_eq!(
            history.json()["revisions"].as_array().map(Vec::len),
            Some(1),
            "{zid} was written more than once: {}",
            history.text
        );
        target.remember(zid);
    }
    target.assert_survived();
}
