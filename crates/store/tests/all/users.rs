use zeval_store::{Role, SqliteStore, StoreError, User};

use crate::{function, implementation};

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
    let store = SqliteStore::open_in_memory().unwrap();
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
    assert_eq!(
        store.approval("Z10001").unwrap().unwrap().approved_by,
        "ada"
    );

    store
        .put(
            "Z10001",
            &implementation("Z10001", "Z10000", "other code"),
            "ed",
        )
        .unwrap();
    assert!(!store.is_approved("Z10001").unwrap());
    assert_eq!(store.approve("Z10001", &admin).unwrap(), 2);
    assert!(store.is_approved("Z10001").unwrap());
    assert!(!store.is_approved("Z10009").unwrap());
}
