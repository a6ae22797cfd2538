//! `--redis URL` for the chat and ticker examples: the server becomes one node of a
//! cluster that shares its rooms through Redis (`ConfigBuilder::redis`). It needs the
//! library's `redis` feature:
//! `cargo run --features redis --example chat -- --redis redis://127.0.0.1:6379/`.

// Each example uses a different part of this module.
#![allow(dead_code)]

use tinywss::{ConfigBuilder, Handle};

use crate::cli::Cli;

/// The `--redis` URL, if one was given; a build without the feature says how to get it.
pub fn url(args: &Cli) -> Option<String> {
    let url = args.extra.get("redis")?;
    if !cfg!(feature = "redis") {
        args.usage_error("--redis needs the redis feature: cargo run --features redis --example ...");
    }
    Some(url.clone())
}

/// Joins the cluster at `url`, if any.
pub fn join(builder: ConfigBuilder, url: Option<&str>) -> ConfigBuilder {
    match url {
        #[cfg(feature = "redis")]
        Some(url) => builder.redis(url),
        _ => builder,
    }
}

/// Whether this server is the first in name order of the cluster's servers alive now
/// (or has no cluster): a way to have one server of several do a job, and another take
/// it over within the heartbeat timeout when that one dies.
pub fn leads(handle: &Handle) -> bool {
    #[cfg(feature = "redis")]
    {
        let nodes = handle.nodes();
        nodes.first() == nodes.iter().min()
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = handle;
        true
    }
}
