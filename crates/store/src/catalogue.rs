//! The built-in catalogue as an [`ObjectSource`]: the first layer of every lookup.

use std::collections::HashMap;

use zeval_zobject::Value;

use crate::{ObjectSource, StoreError};

/// Serves the objects of [`zeval_catalogue`] (types, functions, implementations, testers,
/// error types, languages, Z41/Z42/Z24/Z13). It never fails and never does I/O.
#[derive(Debug, Default, Clone, Copy)]
pub struct CatalogueSource;

impl ObjectSource for CatalogueSource {
    fn fetch(&self, zids: &[String]) -> Result<HashMap<String, Value>, StoreError> {
        Ok(zids
            .iter()
            .filter_map(|zid| Some((zid.clone(), zeval_catalogue::get(zid)?.clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_built_ins_and_leaves_out_the_rest() {
        let zids = ["Z802", "Z1002", "Z10000", "nonsense"].map(String::from);
        let found = CatalogueSource.fetch(&zids).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found["Z802"]["Z2K2"]["Z1K1"], "Z8");
        assert_eq!(found["Z1002"]["Z2K2"]["Z60K1"], "en");
    }
}
