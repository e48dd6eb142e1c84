//! Compiled artifacts and ranking figures, on each backend.

use zeval_store::{
    ArtifactOutcome, CallStats, Compilation, MAX_ARTIFACT_BYTES, MAX_ARTIFACT_ERROR_CHARS,
    MAX_SKETCH_BYTES, Role, StoreError, StoredArtifact, TesterResult, User,
};

use crate::{each_backend, implementation};

fn compiled(bytes: &[u8]) -> StoredArtifact {
    StoredArtifact {
        language: "c".into(),
        compiler: "clang 19".into(),
        outcome: ArtifactOutcome::Compiled(bytes.to_vec()),
    }
}

#[test]
fn artifacts_are_stored_once_per_key_and_bounded() {
    each_backend(|store| {
        assert_eq!(store.artifact("k").unwrap(), None);
        // Every byte value survives.
        let bytes: Vec<u8> = (0..=255).collect();
        store.put_artifact("k", &compiled(&bytes)).unwrap();
        store.put_artifact("k", &compiled(b"two")).unwrap();
        assert_eq!(store.artifact("k").unwrap(), Some(compiled(&bytes)));
        // A report's summary: the size, not the module.
        let summary = |key: &str| {
            store
                .artifact_summary(key)
                .unwrap()
                .map(|s| (s.language, s.compiler, s.outcome))
        };
        assert_eq!(summary("k"), Some(("c".into(), "clang 19".into(), Ok(256))));
        assert_eq!(summary("nothing"), None);
        let failed = StoredArtifact {
            language: "rust".into(),
            compiler: "rustc".into(),
            outcome: ArtifactOutcome::Failed("é".repeat(MAX_ARTIFACT_ERROR_CHARS + 10)),
        };
        store.put_artifact("B", &failed).unwrap();
        match store.artifact("B").unwrap().unwrap().outcome {
            ArtifactOutcome::Failed(message) => {
                assert_eq!(message.chars().count(), MAX_ARTIFACT_ERROR_CHARS)
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.artifact_summary("B").unwrap().map(|s| s.outcome),
            Some(Err(message)) if message.starts_with("éé")
        ));
        // Keys in byte order on both (PostgreSQL's collation would put "B" after "a").
        store.put_artifact("a", &compiled(b"x")).unwrap();
        assert_eq!(store.artifact_keys().unwrap(), ["B", "a", "k"]);
        store
            .put("Z10001", &implementation("Z10001", "Z10000", "x"), "ed")
            .unwrap();
        store
            .record_compilation(&compilation("Z10001", 1, "k", None))
            .unwrap();
        store
            .record_compilation(&compilation("Z10001", 1, "a", None))
            .unwrap();
        assert_eq!(
            store.compilation("Z10001", 1).unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(store.compilation("Z10001", 2).unwrap(), None);
        let huge = compiled(&vec![0; MAX_ARTIFACT_BYTES + 1]);
        assert!(matches!(
            store.put_artifact("h", &huge),
            Err(StoreError::Invalid(_))
        ));
    });
}

fn compilation<'a>(
    zid: &'a str,
    revision: u64,
    key: &'a str,
    artifact: Option<&'a StoredArtifact>,
) -> Compilation<'a> {
    Compilation {
        zid,
        revision,
        key,
        artifact,
        author_budget: u64::MAX,
    }
}

/// Saves revision after revision of an implementation, each compiled to an artifact of its
/// own, and checks what the store holds after each: an editor's saves kept every artifact
/// until 2026-12-06.
#[test]
fn only_the_artifacts_of_current_and_approved_revisions_are_kept() {
    each_backend(|store| {
        let admin = User {
            name: "ada".into(),
            role: Role::Admin,
        };
        let artifact = compiled(&[7; 1000]);
        let save = |revision: u64, key: &str| {
            let saved = store
                .put(
                    "Z10001",
                    &implementation("Z10001", "Z10000", &format!("code {revision}")),
                    "ed",
                )
                .unwrap();
            assert_eq!(saved, revision);
            store
                .record_compilation(&compilation("Z10001", revision, key, Some(&artifact)))
                .unwrap();
        };
        save(1, "k1");
        save(2, "k2");
        // Revision 1 is neither current nor approved: its compilation and artifact are gone.
        assert_eq!(store.compilation("Z10001", 1).unwrap(), None);
        assert_eq!(store.artifact("k1").unwrap(), None);
        assert_eq!(store.artifact_keys().unwrap(), ["k2"]);
        store.approve("Z10001", &admin).unwrap();
        save(3, "k3");
        save(4, "k4");
        // The approved revision (2) is what anonymous calls run: kept beside the current.
        assert_eq!(store.artifact_keys().unwrap(), ["k2", "k4"]);
        assert_eq!(
            store.compilation("Z10001", 2).unwrap().as_deref(),
            Some("k2")
        );
        // An artifact another implementation's compilation names is kept for it.
        store
            .put("Z10002", &implementation("Z10002", "Z10000", "same"), "ed")
            .unwrap();
        store
            .record_compilation(&compilation("Z10002", 1, "k4", None))
            .unwrap();
        save(5, "k5");
        assert_eq!(store.artifact_keys().unwrap(), ["k2", "k4", "k5"]);
        // A compilation recorded late, for a revision no longer current, keeps nothing.
        store
            .record_compilation(&compilation("Z10001", 3, "k3", Some(&artifact)))
            .unwrap();
        assert_eq!(store.artifact_keys().unwrap(), ["k2", "k4", "k5"]);
        assert_eq!(store.compilation("Z10001", 3).unwrap(), None);
    });
}

#[test]
fn an_authors_artifacts_are_kept_within_their_budget() {
    each_backend(|store| {
        let artifact = compiled(&[1; 1000]);
        let record = |zid: &str, author: &str, key: &str| {
            store
                .put(zid, &implementation(zid, "Z10000", key), author)
                .unwrap();
            store.record_compilation(&Compilation {
                author_budget: 2500,
                ..compilation(zid, 1, key, Some(&artifact))
            })
        };
        record("Z10001", "ed", "a").unwrap();
        record("Z10002", "ed", "b").unwrap();
        match record("Z10003", "ed", "c") {
            Err(StoreError::OverBudget {
                author,
                bytes,
                budget,
            }) => {
                assert_eq!((author.as_str(), bytes, budget), ("ed", 3000, 2500));
            }
            other => panic!("{other:?}"),
        }
        // Nothing of the refused one is kept; another author has a budget of their own.
        assert_eq!(store.compilation("Z10003", 1).unwrap(), None);
        assert_eq!(store.artifact("c").unwrap(), None);
        record("Z10004", "eve", "d").unwrap();
        // An editor over their budget who saves a new revision of another author's
        // implementation with the same code (a label edit) is refused, and drops nothing:
        // the earlier revision keeps its artifact.
        let mut relabelled = implementation("Z10004", "Z10000", "d");
        relabelled["Z2K3"] = serde_json::json!({"Z1K1": "Z12", "Z12K1": ["Z11",
            {"Z1K1": "Z11", "Z11K1": "Z1002", "Z11K2": "relabelled"}]});
        assert_eq!(store.put("Z10004", &relabelled, "ed").unwrap(), 2);
        assert!(matches!(
            store.record_compilation(&Compilation {
                author_budget: 1500,
                ..compilation("Z10004", 2, "d", Some(&artifact))
            }),
            Err(StoreError::OverBudget { .. })
        ));
        assert!(store.artifact("d").unwrap().is_some());
        assert_eq!(
            store.compilation("Z10004", 1).unwrap().as_deref(),
            Some("d")
        );
        // Another author's saving the same code is charged to them too: else two accounts
        // could keep any number of artifacts, each naming what the other dropped.
        store
            .put("Z10006", &implementation("Z10006", "Z10000", "a"), "eve")
            .unwrap();
        assert!(matches!(
            store.record_compilation(&Compilation {
                author_budget: 1500,
                ..compilation("Z10006", 1, "a", Some(&artifact))
            }),
            Err(StoreError::OverBudget { bytes: 2000, .. })
        ));
        // The same code saved again by its author costs nothing more.
        record("Z10005", "ed", "a").unwrap();
        assert_eq!(store.artifact_keys().unwrap(), ["a", "b", "d"]);
        // A new revision replaces what the old one kept, and the old one's bytes do not
        // count against it.
        store
            .put("Z10002", &implementation("Z10002", "Z10000", "e"), "ed")
            .unwrap();
        store
            .record_compilation(&Compilation {
                author_budget: 2000,
                ..compilation("Z10002", 2, "e", Some(&artifact))
            })
            .unwrap();
        assert_eq!(store.artifact_keys().unwrap(), ["a", "d", "e"]);
    });
}

fn result(tester: &str, revision: u64, passed: bool, duration_us: u64) -> TesterResult {
    TesterResult {
        implementation: "Z10001".into(),
        implementation_revision: revision,
        tester: tester.into(),
        tester_revision: 1,
        passed,
        duration_us,
        run_ms: 5,
    }
}

#[test]
fn tester_results_replace_earlier_ones_of_the_same_revision() {
    each_backend(|store| {
        store
            .record_tester_result(&result("Z10010", 1, false, 900))
            .unwrap();
        store
            .record_tester_result(&result("Z10010", 1, true, 400))
            .unwrap();
        store
            .record_tester_result(&result("Z10011", 1, true, u64::MAX))
            .unwrap();
        store
            .record_tester_result(&result("Z10010", 2, false, 100))
            .unwrap();
        assert_eq!(
            store.tester_results("Z10001", 1).unwrap(),
            vec![
                result("Z10010", 1, true, 400),
                result("Z10011", 1, true, i64::MAX as u64)
            ]
        );
        assert_eq!(store.tester_results("Z10001", 2).unwrap().len(), 1);
        assert!(store.tester_results("Z10001", 3).unwrap().is_empty());
    });
}

/// A test run's results are recorded in one transaction, later ones of the same key replacing
/// earlier ones as they would one by one.
#[test]
fn a_runs_tester_results_are_recorded_together() {
    each_backend(|store| {
        store.record_tester_results(&[]).unwrap();
        let run = [
            result("Z10010", 1, false, 900),
            result("Z10011", 1, true, 300),
            result("Z10010", 1, true, 400),
            result("Z10010", 2, false, 100),
        ];
        store.record_tester_results(&run).unwrap();
        assert_eq!(
            store.tester_results("Z10001", 1).unwrap(),
            vec![
                result("Z10010", 1, true, 400),
                result("Z10011", 1, true, 300)
            ]
        );
        assert_eq!(
            store.tester_results("Z10001", 2).unwrap(),
            vec![result("Z10010", 2, false, 100)]
        );
    });
}

#[test]
fn call_stats_round_trip_and_are_bounded() {
    each_backend(|store| {
        assert_eq!(store.call_stats("Z10001", 1).unwrap(), None);
        let stats = CallStats {
            calls: 7,
            failures: 2,
            sketch: vec![0, 1, 255],
        };
        store.put_call_stats("Z10001", 1, &stats).unwrap();
        assert_eq!(store.call_stats("Z10001", 1).unwrap(), Some(stats));
        let more = CallStats {
            calls: 9,
            failures: 2,
            sketch: vec![3],
        };
        store.put_call_stats("Z10001", 1, &more).unwrap();
        assert_eq!(store.call_stats("Z10001", 1).unwrap(), Some(more));
        let huge = CallStats {
            calls: 1,
            failures: 0,
            sketch: vec![0; MAX_SKETCH_BYTES + 1],
        };
        assert!(matches!(
            store.put_call_stats("Z10001", 1, &huge),
            Err(StoreError::Invalid(_))
        ));
    });
}
