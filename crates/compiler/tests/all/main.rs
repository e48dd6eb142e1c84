//! Integration tests of zeval-compiler: compiling real C and Rust with the installed
//! toolchains and running the artifacts in zeval-sandbox.

mod common;
mod confinement;
mod diagnostics;
mod hostile;
mod keys;
mod limits;
mod run;
