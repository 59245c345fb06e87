//! `flamingo-eval merge`: join the shard folders of `run --shard I/N` into one results folder.

use crate::report::merge::merge;
use anyhow::{anyhow, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shard folders (e.g. --results results/NAME/shard-*-of-8), all N of them.
    #[arg(long = "results", num_args = 1.., value_name = "DIR", required_unless_present = "shards_positional")]
    pub shards: Vec<PathBuf>,
    /// Deprecated: the shard folders as positional arguments (use --results).
    #[arg(hide = true, value_name = "DIR")]
    pub shards_positional: Vec<PathBuf>,
    /// Output folder (default: the shards' common parent folder, where `run --shard` put them).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The benchmark file the shards ran (default: the path recorded in their summary.json).
    #[arg(long)]
    pub benchmark: Option<PathBuf>,
}

pub fn run(mut args: MergeArgs) -> Result<ExitCode> {
    args.shards = crate::cli::common::results_folders(&args.shards, &args.shards_positional);
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let parents: Vec<PathBuf> = args.shards.iter().map(|s| s.parent().map(|p| p.to_path_buf()).unwrap_or_default()).collect();
            if parents.windows(2).any(|w| w[0] != w[1]) || parents[0].as_os_str().is_empty() {
                return Err(anyhow!("the shard folders have no common parent folder: say where the merged results go with --out DIR"));
            }
            parents[0].clone()
        }
    };
    let o = merge(&args.shards, &out, args.benchmark.as_deref())?;
    print!("{}", crate::engine::run::format_table(&o.summary));
    println!("merged {} shard(s), {} record(s) into {}", o.shards, o.records, o.out.display());
    Ok(ExitCode::SUCCESS)
}
