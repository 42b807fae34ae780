//! Standalone `sealbox-bench`: the same as `sealbox bench`, for running the client from its own
//! build against a server binary (by default the `sealbox` next to this executable).

use clap::Parser;

#[derive(Parser)]
#[command(name = "sealbox-bench", about = "Measure a sealbox server (throughput per SSE mode, KMS ops/s, peak RSS)")]
struct Cli {
    #[command(flatten)]
    opts: sealbox_bench::BenchOpts,
}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if cli.opts.server_bin.is_none() && cli.opts.endpoint.is_none() {
        let exe = std::env::current_exe()?;
        cli.opts.server_bin = exe.parent().map(|dir| dir.join("sealbox"));
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(sealbox_bench::run(cli.opts))
}
