//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod call;
pub(crate) mod conformance;
pub(crate) mod evaluate;
pub(crate) mod export;
pub(crate) mod forms;
pub(crate) mod import;
pub(crate) mod io;
pub(crate) mod serve;
pub(crate) mod test;
pub(crate) mod user;
pub(crate) mod worker;
