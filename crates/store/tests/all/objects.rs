//! The object store's behaviour, checked on each backend (SQLite and PostgreSQL) by
//! [`each_backend`]: one suite, the same answers.

use serde_json::json;
use zeval_store::{
    FIRST_USER_ZID, MAX_HISTORY_PAGE_BYTES, MAX_HISTORY_REVISIONS, MAX_SUMMARY_LABEL_CHARS,
    MAX_ZID_NUMBER, ObjectSource, StoreError,
};

use crate::{each_backend, each_backend_twice, function, z2};

#[test]
fn every_put_adds_a_revision_with_author_and_time() {
    each_backend(|store| {
        assert_eq!(
            store
                .put("Z10001", &z2("Z10001", "one", "first"), "alice")
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .put("Z10001", &z2("Z10001", "two", "second"), "bob")
                .unwrap(),
            2
        );
        let history = store
            .history("Z10001", 0, MAX_HISTORY_REVISIONS)
            .unwrap()
            .revisions;
        assert_eq!(
            history
                .iter()
                .map(|r| (r.revision, r.author.as_str()))
                .collect::<Vec<_>>(),
            [(1, "alice"), (2, "bob")]
        );
        assert_eq!(history[0].object["Z2K2"], "one");
        assert!(
            history[1].timestamp_ms >= history[0].timestamp_ms
                && history[0].timestamp_ms > 1_700_000_000_000
        );
        assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "two");
        assert_eq!(store.current_revision("Z10001").unwrap(), Some(2));
        assert!(
            store
                .history("Z10002", 0, MAX_HISTORY_REVISIONS)
                .unwrap()
                .revisions
                .is_empty()
        );
        assert_eq!(store.get("Z10002").unwrap(), None);
    });
}

/// A page ends once its objects would pass `MAX_HISTORY_PAGE_BYTES`, and holds one revision
/// at least, however large: 100 revisions of 100 KiB objects made a 10 MB page.
#[test]
fn a_history_page_holds_at_most_its_bytes_of_objects() {
    each_backend(|store| {
        let padding = "x".repeat(90_000);
        for n in 1..=25 {
            store
                .put(
                    "Z10001",
                    &z2("Z10001", &format!("v{n} {padding}"), "x"),
                    "alice",
                )
                .unwrap();
        }
        let huge = "y".repeat(MAX_HISTORY_PAGE_BYTES + 1);
        store
            .put("Z10001", &z2("Z10001", &huge, "x"), "alice")
            .unwrap();
        let mut seen = Vec::new();
        let mut after = 0;
        let mut pages = 0;
        loop {
            let page = store
                .history("Z10001", after, MAX_HISTORY_REVISIONS)
                .unwrap();
            assert!(!page.revisions.is_empty());
            let bytes: usize = page
                .revisions
                .iter()
                .map(|r| r.object.to_string().len())
                .sum();
            assert!(
                bytes <= MAX_HISTORY_PAGE_BYTES || page.revisions.len() == 1,
                "{} revisions, {bytes} bytes",
                page.revisions.len()
            );
            seen.extend(page.revisions.iter().map(|r| r.revision));
            pages += 1;
            match page.next {
                Some(next) => {
                    assert_eq!(Some(next), page.revisions.last().map(|r| r.revision));
                    after = next;
                }
                None => break,
            }
        }
        assert_eq!(seen, (1..=26).collect::<Vec<_>>());
        // 25 objects of 90 KB: three pages of at most 11, and the huge one alone.
        assert_eq!(pages, 4);
    });
}

#[test]
fn history_comes_in_pages_of_at_most_the_limit_with_a_cursor_to_the_next() {
    each_backend(|store| {
        for n in 1..=7 {
            store
                .put("Z10001", &z2("Z10001", &format!("v{n}"), "x"), "alice")
                .unwrap();
        }
        let revisions = |page: &zeval_store::HistoryPage| {
            page.revisions
                .iter()
                .map(|r| r.revision)
                .collect::<Vec<_>>()
        };
        let first = store.history("Z10001", 0, 3).unwrap();
        assert_eq!(revisions(&first), [1, 2, 3]);
        assert_eq!(first.revisions[2].object["Z2K2"], "v3");
        assert_eq!(first.next, Some(3));
        let second = store.history("Z10001", 3, 3).unwrap();
        assert_eq!(revisions(&second), [4, 5, 6]);
        assert_eq!(second.next, Some(6));
        // The last page: nothing follows, also when it is exactly full.
        let last = store.history("Z10001", 6, 3).unwrap();
        assert_eq!((revisions(&last), last.next), (vec![7], None));
        let exact = store.history("Z10001", 4, 3).unwrap();
        assert_eq!((revisions(&exact), exact.next), (vec![5, 6, 7], None));
        assert!(store.history("Z10001", 7, 3).unwrap().revisions.is_empty());
        assert!(
            store
                .history("Z10001", u64::MAX, 3)
                .unwrap()
                .revisions
                .is_empty()
        );
        // A limit of 0 still moves forward; a huge one is clamped to the most a page holds.
        assert_eq!(revisions(&store.history("Z10001", 0, 0).unwrap()), [1]);
        for n in 8..=(MAX_HISTORY_REVISIONS as u64 + 5) {
            store
                .put("Z10001", &z2("Z10001", &format!("v{n}"), "x"), "alice")
                .unwrap();
        }
        let clamped = store.history("Z10001", 0, usize::MAX).unwrap();
        assert_eq!(clamped.revisions.len(), MAX_HISTORY_REVISIONS);
        assert_eq!(clamped.next, Some(MAX_HISTORY_REVISIONS as u64));
        let rest = store
            .history("Z10001", MAX_HISTORY_REVISIONS as u64, usize::MAX)
            .unwrap();
        assert_eq!(rest.revisions.len(), 5);
        assert_eq!(rest.next, None);
    });
}

#[test]
fn a_z2_whose_z2k1_does_not_match_is_refused_and_nothing_is_stored() {
    each_backend(|store| {
        let err = store
            .put("Z10001", &z2("Z10002", "x", "x"), "alice")
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(ref m) if m.contains("Z10002")),
            "{err}"
        );
        assert!(matches!(
            store.put("Z10001", &json!({"Z1K1": "Z6"}), "a"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.put("nonsense", &z2("nonsense", "x", "x"), "a"),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.count().unwrap(), 0);
        assert!(
            store
                .history("Z10001", 0, MAX_HISTORY_REVISIONS)
                .unwrap()
                .revisions
                .is_empty()
        );
    });
}

#[test]
fn a_failed_batch_leaves_nothing() {
    each_backend(|store| {
        store
            .put("Z10001", &z2("Z10001", "before", "l"), "alice")
            .unwrap();
        let batch = vec![
            ("Z10001".to_string(), z2("Z10001", "after", "l")),
            ("Z10002".to_string(), z2("Z10002", "new", "l")),
            ("Z10003".to_string(), z2("Z99999", "mismatch", "l")),
        ];
        assert!(store.put_all(&batch, "bob").is_err());
        assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "before");
        assert_eq!(
            store
                .history("Z10001", 0, MAX_HISTORY_REVISIONS)
                .unwrap()
                .revisions
                .len(),
            1
        );
        assert_eq!(store.get("Z10002").unwrap(), None);
        assert_eq!(store.put_all(&batch[..2], "bob").unwrap(), [2, 1]);
    });
}

#[test]
fn create_allocates_from_z10000_and_rewrites_the_placeholder() {
    each_backend(|store| {
        store
            .put("Z802", &z2("Z802", "built-in", "l"), "seed")
            .unwrap();
        let mut new = function("Z0", "Reverse");
        new.as_object_mut().unwrap().remove("Z2K1");
        new["Z2K2"]["Z8K1"] = json!(["Z17", {"Z1K1": "Z17", "Z17K1": "Z6", "Z17K2": "Z0K1"}]);
        let first = store.create(&new, "alice").unwrap();
        assert_eq!(first, format!("Z{FIRST_USER_ZID}"));
        let stored = store.get(&first).unwrap().unwrap();
        assert_eq!(stored["Z2K1"], json!({"Z1K1": "Z6", "Z6K1": "Z10000"}));
        assert_eq!(stored["Z2K2"]["Z8K5"], "Z10000");
        assert_eq!(stored["Z2K2"]["Z8K1"][1]["Z17K2"], "Z10000K1");
        assert_eq!(
            stored
                .as_object()
                .unwrap()
                .keys()
                .take(2)
                .collect::<Vec<_>>(),
            ["Z1K1", "Z2K1"]
        );

        assert_eq!(
            store.create(&function("Z0", "Second"), "alice").unwrap(),
            "Z10001"
        );
        store
            .put("Z10050", &z2("Z10050", "far", "l"), "bob")
            .unwrap();
        assert_eq!(store.next_zid().unwrap(), "Z10051");
        assert_eq!(
            store.create(&function("Z0", "Third"), "alice").unwrap(),
            "Z10051"
        );
        assert!(matches!(
            store.create(&function("Z12345", "named"), "alice"),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.count().unwrap(), 5);
    });
}

#[test]
fn a_search_hit_carries_the_start_of_a_long_label() {
    each_backend(|store| {
        // Four bytes a character: the cut counts characters, in both databases.
        let long = format!("needle {}", "𝄞".repeat(25_000));
        store
            .put("Z10001", &function("Z10001", &long), "a")
            .unwrap();
        let exact = format!("needle {}", "é".repeat(MAX_SUMMARY_LABEL_CHARS - 7));
        store
            .put("Z10002", &function("Z10002", &exact), "a")
            .unwrap();
        let hits = store.search(None, Some("needle"), 10).unwrap();
        let labels: Vec<&str> = hits.iter().filter_map(|h| h.label.as_deref()).collect();
        let cut: String = long.chars().take(MAX_SUMMARY_LABEL_CHARS).collect();
        assert_eq!(labels, [format!("{cut}…"), exact]);
        // The object itself keeps its whole label.
        let stored = store.get("Z10001").unwrap().unwrap();
        assert_eq!(stored["Z2K3"]["Z12K1"][1]["Z11K2"], long.as_str());
    });
}

#[test]
fn search_by_type_and_label() {
    each_backend(|store| {
        store
            .put("Z10001", &function("Z10001", "Reverse a String"), "a")
            .unwrap();
        store
            .put("Z10002", &function("Z10002", "Join 100% strings"), "a")
            .unwrap();
        store
            .put("Z10003", &z2("Z10003", "text", "reverse text"), "a")
            .unwrap();
        let zids = |hits: Vec<zeval_store::ObjectSummary>| {
            hits.into_iter().map(|h| h.zid).collect::<Vec<_>>()
        };
        assert_eq!(
            zids(store.search(Some("Z8"), None, 10).unwrap()),
            ["Z10001", "Z10002"]
        );
        assert_eq!(
            zids(store.search(None, Some("REVERSE"), 10).unwrap()),
            ["Z10001", "Z10003"]
        );
        assert_eq!(
            zids(store.search(Some("Z8"), Some("reverse"), 10).unwrap()),
            ["Z10001"]
        );
        assert_eq!(
            zids(store.search(None, Some("100%"), 10).unwrap()),
            ["Z10002"]
        );
        assert_eq!(
            zids(store.search(None, Some("0%"), 10).unwrap()),
            ["Z10002"]
        );
        assert!(store.search(None, Some("%"), 10).unwrap().len() == 1);
        assert_eq!(
            zids(store.search(None, Some("Z10003"), 10).unwrap()),
            ["Z10003"]
        );
        assert_eq!(store.search(None, None, 2).unwrap().len(), 2);
        let hit = &store.search(None, Some("join"), 1).unwrap()[0];
        assert_eq!(
            (hit.type_zid.as_deref(), hit.label.as_deref(), hit.revision),
            (Some("Z8"), Some("Join 100% strings"), 1)
        );
        let by_type = store.count_by_type().unwrap();
        assert_eq!((by_type["Z8"], by_type["Z6"]), (2, 1));
    });
}

#[test]
fn seeding_is_idempotent_and_keeps_edits() {
    each_backend(|store| {
        let objects = [("Z1", z2("Z1", "a", "one")), ("Z2", z2("Z2", "b", "two"))];
        assert_eq!(store.seed(objects.iter().map(|(z, v)| (*z, v))).unwrap(), 2);
        store
            .put("Z1", &z2("Z1", "edited", "one"), "alice")
            .unwrap();
        assert_eq!(store.seed(objects.iter().map(|(z, v)| (*z, v))).unwrap(), 0);
        assert_eq!(store.get("Z1").unwrap().unwrap()["Z2K2"], "edited");
        assert_eq!(
            store
                .history("Z2", 0, MAX_HISTORY_REVISIONS)
                .unwrap()
                .revisions[0]
                .author,
            zeval_store::CATALOGUE_AUTHOR
        );
    });
}

#[test]
fn a_failed_seed_leaves_nothing() {
    each_backend(|store| {
        let objects = [
            ("Z1", z2("Z1", "a", "one")),
            ("Z2", z2("Z3", "b", "mismatch")),
        ];
        assert!(store.seed(objects.iter().map(|(z, v)| (*z, v))).is_err());
        assert_eq!(store.count().unwrap(), 0);
    });
}

#[test]
fn fetch_returns_only_stored_zids() {
    each_backend(|store| {
        store.put("Z10001", &z2("Z10001", "x", "l"), "a").unwrap();
        let found = store
            .fetch(&["Z10001".into(), "Z10002".into(), "Z10001".into()])
            .unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), ["Z10001"]);
    });
}

#[test]
fn hostile_nesting_is_refused() {
    each_backend(|store| {
        let mut deep = json!("x");
        for _ in 0..2_000 {
            deep = zeval_zobject::Value::Array(vec![deep]);
        }
        let mut object = z2("Z10001", "x", "l");
        object["Z2K2"] = deep;
        assert!(matches!(
            store.put("Z10001", &object, "a"),
            Err(StoreError::Invalid(_))
        ));
        zeval_zobject::depth::drop_iteratively(object);
    });
}

#[test]
fn zids_past_the_maximum_are_refused_on_every_write_path() {
    each_backend(|store| {
        let too_large = format!("Z{}", MAX_ZID_NUMBER + 1);
        let refused = |result: Result<(), StoreError>| {
            matches!(result, Err(StoreError::ZidOutOfRange { zid, max })
            if zid == too_large && max == MAX_ZID_NUMBER)
        };
        assert!(refused(
            store
                .put(&too_large, &z2(&too_large, "x", "l"), "a")
                .map(drop)
        ));
        let batch = [
            ("Z10001".to_string(), z2("Z10001", "ok", "l")),
            (too_large.clone(), z2(&too_large, "x", "l")),
        ];
        assert!(refused(store.put_all(&batch, "import").map(drop)));
        let seeded = z2(&too_large, "x", "l");
        assert!(refused(
            store.seed([(too_large.as_str(), &seeded)]).map(drop)
        ));
        assert_eq!(
            store.count().unwrap(),
            0,
            "nothing of a refused batch is written"
        );
        let largest = format!("Z{MAX_ZID_NUMBER}");
        assert_eq!(
            store.put(&largest, &z2(&largest, "x", "l"), "a").unwrap(),
            1
        );
    });
}

#[test]
fn allocation_after_the_largest_zid_takes_the_lowest_free_one() {
    each_backend(|store| {
        let largest = format!("Z{MAX_ZID_NUMBER}");
        store.put(&largest, &z2(&largest, "top", "l"), "a").unwrap();
        store.put("Z10001", &z2("Z10001", "one", "l"), "a").unwrap();
        assert_eq!(store.next_zid().unwrap(), "Z10000");
        assert_eq!(store.create(&function("Z0", "f"), "a").unwrap(), "Z10000");
        assert_eq!(store.create(&function("Z0", "g"), "a").unwrap(), "Z10002");
        assert_eq!(store.get(&largest).unwrap().unwrap()["Z2K2"], "top");
        assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "one");
        assert_eq!(store.current_revision(&largest).unwrap(), Some(1));
    });
}

#[test]
fn concurrent_creates_on_two_nodes_never_share_a_zid() {
    each_backend_twice(|a, b| {
        let zids: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = [a, b, a, b]
                .into_iter()
                .map(|store| {
                    scope.spawn(move || {
                        (0..10)
                            .map(|_| store.create(&function("Z0", "f"), "a").unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        let mut unique = zids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 40);
        // The counter has no gaps: Z10000 to Z10039.
        assert_eq!(unique.first().map(String::as_str), Some("Z10000"));
        assert_eq!(unique.last().map(String::as_str), Some("Z10039"));
        assert_eq!(b.count().unwrap(), 40);
        for zid in &unique {
            assert_eq!(
                a.history(zid, 0, MAX_HISTORY_REVISIONS)
                    .unwrap()
                    .revisions
                    .len(),
                1,
                "{zid} was written once"
            );
        }
    });
}

#[test]
fn a_write_on_one_node_is_read_on_the_other_at_once() {
    each_backend_twice(|a, b| {
        a.put("Z10001", &z2("Z10001", "one", "l"), "alice").unwrap();
        assert_eq!(b.get("Z10001").unwrap().unwrap()["Z2K2"], "one");
        b.put("Z10001", &z2("Z10001", "two", "l"), "bob").unwrap();
        assert_eq!(a.get("Z10001").unwrap().unwrap()["Z2K2"], "two");
        assert_eq!(a.current_revision("Z10001").unwrap(), Some(2));
    });
}

#[test]
fn a_write_based_on_a_stale_revision_is_a_conflict_and_writes_nothing() {
    each_backend(|store| {
        // Base 0: only if new.
        assert_eq!(
            store
                .put_based_on("Z10001", &z2("Z10001", "one", "l"), "alice", Some(0))
                .unwrap(),
            1
        );
        let conflict = store
            .put_based_on("Z10001", &z2("Z10001", "again", "l"), "bob", Some(0))
            .unwrap_err();
        assert!(
            matches!(conflict, StoreError::Conflict { ref zid, base: 0, current: Some(1) } if zid == "Z10001"),
            "{conflict}"
        );
        assert_eq!(
            store
                .put_based_on("Z10001", &z2("Z10001", "two", "l"), "alice", Some(1))
                .unwrap(),
            2
        );
        // Bob edited revision 1 too: his save is refused, and alice's stays.
        assert!(matches!(
            store.put_based_on("Z10001", &z2("Z10001", "bob's", "l"), "bob", Some(1)),
            Err(StoreError::Conflict {
                base: 1,
                current: Some(2),
                ..
            })
        ));
        // A base on an object that does not exist.
        assert!(matches!(
            store.put_based_on("Z10002", &z2("Z10002", "x", "l"), "bob", Some(3)),
            Err(StoreError::Conflict {
                base: 3,
                current: None,
                ..
            })
        ));
        assert_eq!(store.get("Z10001").unwrap().unwrap()["Z2K2"], "two");
        assert_eq!(
            store
                .history("Z10001", 0, MAX_HISTORY_REVISIONS)
                .unwrap()
                .revisions
                .len(),
            2
        );
        assert_eq!(store.get("Z10002").unwrap(), None);
        // Without a base, a write goes on top of whatever is current, as before.
        assert_eq!(
            store
                .put("Z10001", &z2("Z10001", "three", "l"), "bob")
                .unwrap(),
            3
        );
    });
}

#[test]
fn of_two_editors_saving_the_same_revision_on_two_nodes_exactly_one_wins() {
    each_backend_twice(|a, b| {
        a.put("Z10001", &z2("Z10001", "base", "l"), "alice")
            .unwrap();
        for round in 1..=5u64 {
            let results: Vec<_> = std::thread::scope(|scope| {
                let threads: Vec<_> = [(a, "alice"), (b, "bob")]
                    .into_iter()
                    .map(|(store, who)| {
                        scope.spawn(move || {
                            let text = format!("{who} {round}");
                            store.put_based_on(
                                "Z10001",
                                &z2("Z10001", &text, "l"),
                                who,
                                Some(round),
                            )
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
            assert_eq!(won.len(), 1, "round {round}: {results:?}");
            assert_eq!(*won[0].as_ref().unwrap(), round + 1);
            assert!(results.iter().any(|r| matches!(
                r,
                Err(StoreError::Conflict { current: Some(c), .. }) if c == &(round + 1)
            )));
        }
        assert_eq!(
            a.history("Z10001", 0, MAX_HISTORY_REVISIONS)
                .unwrap()
                .revisions
                .len(),
            6
        );
    });
}

#[test]
fn labels_and_texts_round_trip_on_both_backends() {
    each_backend(|store| {
        // A NUL, non-ASCII text and JSON escapes: the object comes back exactly as written.
        let object = z2("Z10001", "a\u{0}b \"q\" \\ é 😀", "Label\u{0}with NUL ü");
        store.put("Z10001", &object, "alice").unwrap();
        assert_eq!(store.get("Z10001").unwrap().unwrap(), object);
        assert_eq!(
            store
                .history("Z10001", 0, MAX_HISTORY_REVISIONS)
                .unwrap()
                .revisions[0]
                .object,
            object
        );
        let hits = store.search(None, Some("LABEL"), 10).unwrap();
        assert_eq!(hits.len(), 1);
        assert!(hits[0].label.as_deref().unwrap().starts_with("Label"));
    });
}

#[test]
fn a_new_store_is_seeded_with_the_catalogue_once_on_each_backend() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::postgres_server::fresh_database();
    for database_url in [None, Some(url.as_str())] {
        let store = zeval_store::Store::open_url(database_url, dir.path(), true).unwrap();
        let count = store.count().unwrap();
        assert_eq!(count as usize, zeval_catalogue::zids().count());
        assert_eq!(
            store.get("Z802").unwrap().as_ref(),
            zeval_catalogue::get("Z802")
        );
        drop(store);
        let store = zeval_store::Store::open_url(database_url, dir.path(), true).unwrap();
        assert_eq!(store.count().unwrap(), count);
        assert_eq!(
            store
                .history("Z802", 0, MAX_HISTORY_REVISIONS)
                .unwrap()
                .revisions
                .len(),
            1
        );
    }
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = zeval_store::Store::open_url(Some("mysql://x/y"), dir.path(), false).unwrap_err();
    assert!(err.to_string().contains("postgres://"), "{err}");
    // Nothing listens there: refused at once, not hung.
    let dir_url = format!(
        "postgresql://zeval@localhost/x?host={}",
        dir.path().display()
    );
    let started = std::time::Instant::now();
    assert!(matches!(
        zeval_store::Store::open_url(Some(&dir_url), dir.path(), false),
        Err(StoreError::Database(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
