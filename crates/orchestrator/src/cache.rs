//! A cache of fetched objects shared between requests, as an [`ObjectSource`] wrapper.
//!
//! Limit: at most `capacity` objects are kept; when full, the cache is emptied and refilled
//! (objects change rarely and refetching is cheap compared to serving stale data forever).
//! Missing ZIDs are not cached, so an object created on the wiki shows up on the next call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zeval_store::{ObjectSource, StoreError};
use zeval_zobject::Value;

/// Caches what an inner source returns.
pub struct SharedCache {
    inner: Arc<dyn ObjectSource>,
    capacity: usize,
    objects: Mutex<HashMap<String, Value>>,
}

impl SharedCache {
    /// Caches up to `capacity` objects of `inner`.
    pub fn new(inner: Arc<dyn ObjectSource>, capacity: usize) -> Self {
        SharedCache {
            inner,
            capacity,
            objects: Mutex::new(HashMap::new()),
        }
    }
}

impl ObjectSource for SharedCache {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
            for zid in zids {
                match objects.get(zid) {
                    Some(v) => {
                        found.insert(zid.clone(), v.clone());
                    }
                    None => missing.push(zid.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let fetched = self.inner.fetch(&missing)?;
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        if objects.len() + fetched.len() > self.capacity {
            objects.clear();
        }
        for (zid, v) in fetched {
            objects.insert(zid.clone(), v.clone());
            found.insert(zid, v);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);
    impl ObjectSource for Counting {
        fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(zids
                .iter()
                .filter(|z| *z != "Z404")
                .map(|z| (z.clone(), Value::from(z.as_str())))
                .collect())
        }
    }

    #[test]
    fn second_fetch_is_served_from_the_cache() {
        let inner = Arc::new(Counting(AtomicUsize::new(0)));
        let cache = SharedCache::new(inner.clone(), 10);
        let ask = |z: &str| cache.fetch(&[z.to_string()]).unwrap();
        assert_eq!(ask("Z1").len(), 1);
        assert_eq!(ask("Z1").len(), 1);
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        assert!(ask("Z404").is_empty());
        assert!(ask("Z404").is_empty());
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
    }
}
