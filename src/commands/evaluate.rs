//! `zeval evaluate [FILE|-] [--avro]`: evaluate one request body, as the evaluator service
//! would answer it, and print the normal-form Z22.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use zeval_evaluator::{Evaluator, EvaluatorConfig, Variant};

/// Evaluate a request body (JSON `{reentrant, zobject}`, the JSON executor form, or Avro
/// 0.0.1–0.0.4) in the wasm sandbox and print the normal-form Z22.
#[derive(clap::Args)]
pub(crate) struct EvaluateCommand {
    /// The request body; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// The body is Avro (versioned 0.0.2–0.0.4, or a bare 0.0.1 union). Without this flag a
    /// body that does not start with `{` is also tried as Avro.
    #[arg(long)]
    avro: bool,
    /// Which executors are registered: omnibus, javascript-all or python3-all.
    #[arg(long, default_value = "omnibus")]
    variant: Variant,
    /// Where the guests are (default: $ZEVAL_GUEST_DIR, else /var/cache/zeval/guests).
    #[arg(long)]
    guest_dir: Option<PathBuf>,
    /// Wall-time limit of the call in milliseconds (default 10000).
    #[arg(long)]
    timeout_ms: Option<u64>,
}

impl EvaluateCommand {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let body = read_body(self.file.as_deref())?;
        let mut config = match self.guest_dir {
            Some(dir) => EvaluatorConfig::new(dir),
            None => EvaluatorConfig::default(),
        };
        config.variant = self.variant;
        if let Some(ms) = self.timeout_ms {
            config.limits.wall_time = std::time::Duration::from_millis(ms);
        }
        let evaluator = Evaluator::new(config).context("starting the evaluator")?;
        let content_type = if self.avro {
            "application/octet-stream"
        } else {
            "application/json"
        };
        let content_type = if self.avro || looks_like_json(&body) {
            Some(content_type)
        } else {
            None
        };
        let z22 = evaluator.evaluate_body(&body, content_type);
        println!("{}", serde_json::to_string(&z22)?);
        Ok(ExitCode::SUCCESS)
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn read_body(path: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(p) if p != std::path::Path::new("-") => {
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))
        }
        _ => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("reading standard input")?;
            Ok(body)
        }
    }
}
