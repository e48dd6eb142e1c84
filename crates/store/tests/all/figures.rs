//! Compiled artifacts and ranking figures, on each backend.

use zeval_store::{
    ArtifactOutcome, CallStats, MAX_ARTIFACT_BYTES, MAX_ARTIFACT_ERROR_CHARS, MAX_SKETCH_BYTES,
    StoreError, StoredArtifact, TesterResult,
};

use crate::each_backend;

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
        // Keys in byte order on both (PostgreSQL's collation would put "B" after "a").
        store.put_artifact("a", &compiled(b"x")).unwrap();
        assert_eq!(store.artifact_keys().unwrap(), ["B", "a", "k"]);
        store.record_compilation("Z10001", 1, "k").unwrap();
        store.record_compilation("Z10001", 1, "a").unwrap();
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
