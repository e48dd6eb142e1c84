//! `zeval-wizer IN.wasm OUT.wasm [--preopen HOSTDIR::GUESTDIR]`: snapshots a guest after
//! running its `wizer.initialize` export (see `zeval_sandbox::wizer`).

use std::path::PathBuf;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut positional = Vec::new();
    let mut preopen: Option<(PathBuf, String)> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--preopen" {
            let spec = args.next().context("--preopen needs HOSTDIR::GUESTDIR")?;
            let (host, guest) = spec
                .split_once("::")
                .context("--preopen takes HOSTDIR::GUESTDIR")?;
            preopen = Some((PathBuf::from(host), guest.to_owned()));
        } else if arg.starts_with('-') {
            bail!(
                "unknown option {arg}; usage: zeval-wizer IN.wasm OUT.wasm [--preopen HOSTDIR::GUESTDIR]"
            );
        } else {
            positional.push(PathBuf::from(arg));
        }
    }
    let [input, output] = positional.as_slice() else {
        bail!("usage: zeval-wizer IN.wasm OUT.wasm [--preopen HOSTDIR::GUESTDIR]");
    };
    let wasm = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let started = std::time::Instant::now();
    let snapshot = zeval_sandbox::wizer::snapshot(
        &wasm,
        preopen
            .as_ref()
            .map(|(host, guest)| (host.as_path(), guest.as_str())),
    )?;
    let temporary = output.with_extension("wasm.tmp");
    std::fs::write(&temporary, &snapshot)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, output).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "zeval-wizer: {} ({} bytes) -> {} ({} bytes) in {:.2?}",
        input.display(),
        wasm.len(),
        output.display(),
        snapshot.len(),
        started.elapsed()
    );
    Ok(())
}
