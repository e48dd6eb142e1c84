use zeval_store::{Reviewed, Role, SqliteStore, StoreError, User};

use crate::{each_backend, function, implementation};

#[test]
fn tokens_authenticate_and_only_their_hash_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).unwrap();
    let token = store.add_user("ada", Role::Admin).unwrap();
    assert_eq!(
        store.authenticate(&token).unwrap(),
        Some(User {
            name: "ada".into(),
            role: Role::Admin
        })
    );
    assert_eq!(store.authenticate(&token[1..]).unwrap(), None);
    assert_eq!(store.authenticate("").unwrap(), None);
    assert!(matches!(
        store.add_user("ada", Role::Editor),
        Err(StoreError::UserExists(_))
    ));
    drop(store);

    // Neither the database nor its write-ahead log holds the token in any encoding.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let raw = hex::decode(&token).unwrap();
    assert!(bytes.len() > 4096);
    assert!(
        !bytes
            .windows(token.len())
            .any(|w| w.eq_ignore_ascii_case(token.as_bytes()))
    );
    assert!(!bytes.windows(raw.len()).any(|w| w == raw.as_slice()));
    let store = SqliteStore::open_in(dir.path()).unwrap();
    assert_eq!(store.authenticate(&token).unwrap().unwrap().name, "ada");
    assert_eq!(store.users().unwrap().len(), 1);
}

#[test]
fn only_admins_approve_and_a_new_revision_needs_a_new_approval() {
    each_backend(|store| {
        store.put("Z10000", &function("Z10000", "f"), "ed").unwrap();
        store
            .put("Z10001", &implementation("Z10001", "Z10000", "x"), "ed")
            .unwrap();
        let admin = User {
            name: "ada".into(),
            role: Role::Admin,
        };
        let editor = User {
            name: "ed".into(),
            role: Role::Editor,
        };

        assert!(!store.is_approved("Z10001").unwrap());
        assert!(matches!(
            store.approve("Z10001", &editor),
            Err(StoreError::Forbidden(_))
        ));
        assert!(!store.is_approved("Z10001").unwrap());
        assert!(matches!(
            store.approve("Z10000", &admin),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.approve("Z10009", &admin),
            Err(StoreError::NotFound(_))
        ));

        assert_eq!(store.approve("Z10001", &admin).unwrap(), 1);
        assert!(store.is_approved("Z10001").unwrap());
        let approval = store.approval("Z10001").unwrap().unwrap();
        assert_eq!(approval.approved_by, "ada");
        // The signature its function had, labels apart, kept with the approval.
        let signature = serde_json::json!({"Z8K1": [], "Z8K2": "Z6"});
        assert_eq!(approval.signature.as_ref(), Some(&signature));
        store
            .put("Z10000", &function("Z10000", "relabelled"), "ed")
            .unwrap();
        let mut returns_text_list = function("Z10000", "f");
        returns_text_list["Z2K2"]["Z8K2"] =
            serde_json::json!({"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"});
        store.put("Z10000", &returns_text_list, "ed").unwrap();
        let kept = store.approved_object("Z10001").unwrap().unwrap();
        assert_eq!(
            kept.signature,
            Some(signature),
            "an approval keeps its function's signature as it was"
        );

        store
            .put(
                "Z10001",
                &implementation("Z10001", "Z10000", "other code"),
                "ed",
            )
            .unwrap();
        assert!(!store.is_approved("Z10001").unwrap());
        // The approved object is the approved revision's, or none while a newer one waits.
        assert_eq!(store.approved_object("Z10001").unwrap(), None);
        assert_eq!(store.approve("Z10001", &admin).unwrap(), 2);
        assert!(store.is_approved("Z10001").unwrap());
        assert!(!store.is_approved("Z10009").unwrap());
        let approved = store.approved_object("Z10001").unwrap().unwrap();
        assert_eq!(
            approved.object,
            implementation("Z10001", "Z10000", "other code")
        );
        assert_eq!(
            approved.signature,
            Some(serde_json::json!({"Z8K1": [],
                "Z8K2": {"Z1K1": "Z7", "Z7K1": "Z881", "Z881K1": "Z6"}})),
            "approved again: the function's signature now"
        );
        assert_eq!(store.approved_object("Z10009").unwrap(), None);

        // An approval of the revision the admin reviewed approves no other.
        store
            .put("Z10001", &implementation("Z10001", "Z10000", "third"), "ed")
            .unwrap();
        assert!(matches!(
            store.approve_revision("Z10001", &admin, reviewed(Some(2), None)),
            Err(StoreError::Conflict {
                current: Some(3),
                ..
            })
        ));
        assert!(!store.is_approved("Z10001").unwrap());
        assert_eq!(
            store
                .approve_revision("Z10001", &admin, reviewed(Some(3), None))
                .unwrap(),
            3
        );
        assert!(store.is_approved("Z10001").unwrap());
    });
}

#[test]
fn users_and_tokens_on_each_backend() {
    each_backend(|store| {
        let ada = store.add_user("ada", Role::Admin).unwrap();
        let ed = store.add_user("ed", Role::Editor).unwrap();
        assert_ne!(ada, ed);
        assert_eq!(
            store.authenticate(&ed).unwrap(),
            Some(User {
                name: "ed".into(),
                role: Role::Editor
            })
        );
        assert_eq!(store.authenticate(&ada[1..]).unwrap(), None);
        assert_eq!(store.authenticate("").unwrap(), None);
        assert!(matches!(
            store.add_user("ada", Role::Editor),
            Err(StoreError::UserExists(_))
        ));
        assert!(matches!(
            store.add_user("a\nb", Role::Editor),
            Err(StoreError::InvalidUser(_))
        ));
        assert_eq!(
            store
                .users()
                .unwrap()
                .into_iter()
                .map(|u| u.name)
                .collect::<Vec<_>>(),
            ["ada", "ed"]
        );
    });
}

#[test]
fn users_and_approvals_move_between_stores_with_their_token_hashes() {
    let source = zeval_store::Store::open_in_memory().unwrap();
    let token = source.add_user("ada", Role::Admin).unwrap();
    source
        .put("Z10000", &function("Z10000", "f"), "ed")
        .unwrap();
    source
        .put("Z10001", &implementation("Z10001", "Z10000", "x"), "ed")
        .unwrap();
    let ada = source.authenticate(&token).unwrap().unwrap();
    source.approve("Z10001", &ada).unwrap();
    let records = source.user_records().unwrap();
    let approvals = source.approvals().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].token_sha256.len(), 64);
    assert_eq!(approvals[0].0, "Z10001");
    assert!(approvals[0].1.signature.is_some());
    each_backend(|store| {
        assert!(store.restore_user(&records[0]).unwrap());
        assert!(
            !store.restore_user(&records[0]).unwrap(),
            "a second time: left alone"
        );
        // The token works on the new store, though it never left the old one.
        assert_eq!(store.authenticate(&token).unwrap(), Some(ada.clone()));
        assert_eq!(store.user_records().unwrap(), records);
        store
            .put("Z10001", &implementation("Z10001", "Z10000", "x"), "import")
            .unwrap();
        store
            .restore_approval("Z10001", &approvals[0].1, false)
            .unwrap();
        assert!(store.is_approved("Z10001").unwrap());
        assert_eq!(store.approvals().unwrap(), approvals);
        // One that kept no signature (suspended where it was exported) keeps none here.
        store
            .put("Z10000", &function("Z10000", "f"), "import")
            .unwrap();
        let unsigned = zeval_store::Approval {
            signature: None,
            ..approvals[0].1.clone()
        };
        store.restore_approval("Z10001", &unsigned, false).unwrap();
        assert_eq!(store.approvals().unwrap()[0].1.signature, None);
        // From an export made before approvals kept signatures: the one its function has in
        // this store.
        store.restore_approval("Z10001", &unsigned, true).unwrap();
        assert_eq!(store.approvals().unwrap(), approvals);
        let bad = zeval_store::UserRecord {
            token_sha256: "XYZ".into(),
            ..records[0].clone()
        };
        assert!(matches!(
            store.restore_user(&bad),
            Err(StoreError::InvalidUser(_))
        ));
    });
}

/// A stored type of one key, of type `key_type`.
fn one_key_type(zid: &str, key_type: &str) -> serde_json::Value {
    let mut z2 = crate::z2(zid, "", "a type");
    z2["Z2K2"] = serde_json::json!({"Z1K1": "Z4", "Z4K1": zid,
        "Z4K2": ["Z3", {"Z1K1": "Z3", "Z3K1": key_type, "Z3K2": format!("{zid}K1"),
            "Z3K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}],
        "Z4K3": "Z101"});
    z2
}

/// An approval keeps what the stored types its function's signature names were, in its own
/// transaction (the rule compares them with the types as calls read them); a signature
/// naming more than the rule reads per request cannot be approved.
#[test]
fn an_approval_keeps_the_stored_types_its_functions_signature_names() {
    each_backend(|store| {
        let admin = User {
            name: "ada".into(),
            role: Role::Admin,
        };
        store
            .put("Z10010", &one_key_type("Z10010", "Z10011"), "ed")
            .unwrap();
        store
            .put("Z10011", &one_key_type("Z10011", "Z6"), "ed")
            .unwrap();
        let mut function = function("Z10000", "f");
        function["Z2K2"]["Z8K1"] = serde_json::json!(["Z17", {"Z1K1": "Z17",
            "Z17K1": "Z10010", "Z17K2": "Z10000K1", "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}]);
        store.put("Z10000", &function, "ed").unwrap();
        store
            .put("Z10001", &implementation("Z10001", "Z10000", "x"), "ed")
            .unwrap();
        store.approve("Z10001", &admin).unwrap();
        let kept = store
            .approval("Z10001")
            .unwrap()
            .unwrap()
            .signature
            .unwrap();
        assert_eq!(kept["Z8K1"], serde_json::json!([["Z10010", "Z10000K1"]]));
        // Pinned as defined, their keys' labels apart.
        let pin = |z2: serde_json::Value| {
            let mut value = z2["Z2K2"].clone();
            value["Z4K2"][1].as_object_mut().unwrap().remove("Z3K3");
            value
        };
        assert_eq!(
            kept["definitions"],
            serde_json::json!({
                "Z10010": pin(one_key_type("Z10010", "Z10011")),
                "Z10011": pin(one_key_type("Z10011", "Z6")),
            })
        );
        // A chain of types, each naming the next, past what an approval pins.
        let chain = zeval_zobject::signature::MAX_PINNED + 1;
        for n in 0..chain {
            let zid = format!("Z{}", 10100 + n);
            let next = if n + 1 == chain {
                "Z6".to_owned()
            } else {
                format!("Z{}", 10101 + n)
            };
            store.put(&zid, &one_key_type(&zid, &next), "ed").unwrap();
        }
        function["Z2K2"]["Z8K1"][1]["Z17K1"] = serde_json::json!("Z10100");
        store.put("Z10000", &function, "ed").unwrap();
        match store.approve("Z10001", &admin) {
            Err(StoreError::Invalid(why)) => {
                assert!(why.contains("name more than 64 stored objects"), "{why}")
            }
            other => panic!("approved: {other:?}"),
        }
        assert_eq!(
            store.approval("Z10001").unwrap().unwrap().signature,
            Some(kept),
            "the refused approval left the earlier one as it was"
        );
    });
}

fn reviewed(revision: Option<u64>, function: Option<(&str, u64)>) -> Reviewed {
    Reviewed {
        revision,
        function: function.map(|(zid, revision)| (zid.to_owned(), revision)),
        signature: None,
    }
}

/// An approval naming the tag of what the admin reviewed (`approval_preview`) lands only while
/// it would keep the same: a type the function names, redefined between the review and the
/// approval, is not pinned unseen.
#[test]
fn an_approval_of_reviewed_types_keeps_no_others() {
    each_backend(|store| {
        let admin = User {
            name: "ada".into(),
            role: Role::Admin,
        };
        store
            .put("Z10010", &one_key_type("Z10010", "Z6"), "ed")
            .unwrap();
        let mut function = function("Z10000", "f");
        function["Z2K2"]["Z8K1"] = serde_json::json!(["Z17", {"Z1K1": "Z17",
            "Z17K1": "Z10010", "Z17K2": "Z10000K1", "Z17K3": {"Z1K1": "Z12", "Z12K1": ["Z11"]}}]);
        store.put("Z10000", &function, "ed").unwrap();
        store
            .put("Z10001", &implementation("Z10001", "Z10000", "x"), "ed")
            .unwrap();
        let preview = store.approval_preview("Z10001").unwrap();
        assert_eq!(
            (preview.revision, preview.function.clone()),
            (1, Some(("Z10000".to_owned(), 1)))
        );
        assert!(preview.signature.as_ref().unwrap()["definitions"]["Z10010"].is_object());
        let as_reviewed = |preview: &zeval_store::ApprovalPreview| Reviewed {
            revision: Some(preview.revision),
            function: preview.function.clone(),
            signature: Some(preview.signature_tag.clone()),
        };
        // An editor redefines the type, not the function: its revision still matches.
        store
            .put("Z10010", &one_key_type("Z10010", "Z1"), "ed")
            .unwrap();
        match store.approve_revision("Z10001", &admin, as_reviewed(&preview)) {
            Err(StoreError::Changed(message)) => {
                assert!(message.contains("not as reviewed"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.approval("Z10001").unwrap(), None);
        let again = store.approval_preview("Z10001").unwrap();
        assert_ne!(again.signature_tag, preview.signature_tag);
        assert_eq!(
            store
                .approve_revision("Z10001", &admin, as_reviewed(&again))
                .unwrap(),
            1
        );
        let kept = store.approval("Z10001").unwrap().unwrap().signature;
        assert_eq!(kept, again.signature);
        assert!(matches!(
            store.approval_preview("Z10000"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.approval_preview("Z19999"),
            Err(StoreError::NotFound(_))
        ));
    });
}

/// An approval naming the function revision the admin reviewed lands only while the
/// function is at it: the signature it keeps is that revision's.
#[test]
fn an_approval_of_a_reviewed_function_revision_keeps_no_other() {
    each_backend(|store| {
        let admin = User {
            name: "ada".into(),
            role: Role::Admin,
        };
        store.put("Z10000", &function("Z10000", "f"), "ed").unwrap();
        store
            .put("Z10001", &implementation("Z10001", "Z10000", "x"), "ed")
            .unwrap();
        let mut widened = function("Z10000", "f");
        widened["Z2K2"]["Z8K2"] = serde_json::json!("Z1");
        store.put("Z10000", &widened, "ed").unwrap();
        match store.approve_revision("Z10001", &admin, reviewed(Some(1), Some(("Z10000", 1)))) {
            Err(StoreError::Conflict {
                zid,
                base: 1,
                current: Some(2),
            }) => assert_eq!(zid, "Z10000"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.approval("Z10001").unwrap(), None);
        assert_eq!(
            store
                .approve_revision("Z10001", &admin, reviewed(Some(1), Some(("Z10000", 2))))
                .unwrap(),
            1
        );
        let kept = store.approval("Z10001").unwrap().unwrap().signature;
        assert_eq!(kept, Some(serde_json::json!({"Z8K1": [], "Z8K2": "Z1"})));
    });
}
