//! Configuration of an [`crate::Evaluator`].

use std::path::PathBuf;

use zeval_sandbox::{Limits, SandboxConfig};

use crate::language::Variant;

/// How an evaluator is set up. Every field has a default ([`EvaluatorConfig::default`]).
#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    /// Where `guests/build.sh` put `quickjs.wasm` and `python.wasm` (default
    /// [`zeval_sandbox::default_guest_dir`]: `$ZEVAL_GUEST_DIR`, else
    /// `/var/cache/zeval/guests`).
    pub guest_dir: PathBuf,
    /// Which languages get an executor (default [`Variant::Omnibus`]).
    pub variant: Variant,
    /// The sandbox (module cache, pool, stack, fuel metering). Default: the sandbox's
    /// defaults with the module cache in `<guest_dir>/../module-cache`.
    pub sandbox: SandboxConfig,
    /// The limits of one call (default [`Limits::default`]: 10 s wall time, 128 MiB linear
    /// memory, 8 MiB of input and of output).
    pub limits: Limits,
    /// Load the guests without their snapshot (`*.raw.wasm`). Benchmarks only: every call
    /// then boots the interpreter and loads the runner.
    pub unsnapshotted: bool,
    /// The name reported in the `evaluationHostname` metadata key, instead of the machine's
    /// host name (which would tell every caller something about the deployment). Default
    /// [`default_instance_name`]: `zeval-` and 8 random hex digits, drawn once per process.
    pub instance_name: String,
}

pub use zeval_zobject::metadata_format::default_instance_name;

impl Default for EvaluatorConfig {
    fn default() -> Self {
        let guest_dir = zeval_sandbox::default_guest_dir();
        Self::new(guest_dir)
    }
}

impl EvaluatorConfig {
    /// The defaults, with guests read from `guest_dir`.
    pub fn new(guest_dir: impl Into<PathBuf>) -> Self {
        let guest_dir = guest_dir.into();
        let cache_dir = guest_dir
            .parent()
            .map(|parent| parent.join("module-cache"))
            .unwrap_or_else(|| guest_dir.join("module-cache"));
        Self {
            guest_dir,
            variant: Variant::default(),
            sandbox: SandboxConfig::new(cache_dir),
            limits: Limits::default(),
            unsnapshotted: false,
            instance_name: default_instance_name().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_instance_name_is_random_per_process_and_stable() {
        let name = default_instance_name();
        assert_eq!(name.len(), "zeval-".len() + 8, "{name}");
        assert!(name.starts_with("zeval-"));
        assert!(name[6..].chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_eq!(default_instance_name(), name);
        assert_eq!(EvaluatorConfig::new("/nowhere").instance_name, name);
    }
}
