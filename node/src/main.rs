//! The `shoal` binary: parse configuration, set up logging, run a node.

use clap::Parser;
use shoal_node::config::{Cli, Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The stack of every runtime thread (Linux's default for a main thread).
const SCRIPT_STACK: usize = 8 << 20;

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
        // Scripts run on these threads: Lua and the C libraries Redis bundles (cjson nests
        // 1,000 deep) recurse on the thread's stack, and Redis gives them its main thread's
        // 8 MiB. Tokio's 2 MiB is close to what one deep cjson.decode takes in a debug build.
        .thread_stack_size(SCRIPT_STACK)
        .build()?;
    runtime.block_on(shoal_node::server::run(config))?;
    Ok(())
}
