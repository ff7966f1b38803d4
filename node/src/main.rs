//! The `shoal` binary: parse configuration, set up logging, run a node.

use clap::Parser;
use shoal_node::config::{Cli, Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::from_cli(Cli::parse())?;
    let filter = EnvFilter::try_new(&config.log_level)?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .thread_name("shoal")
        .build()?;
    runtime.block_on(shoal_node::server::run(config))?;
    Ok(())
}
