//! `aigw-rls --listen ADDR --redis URL --config PLUGIN.json`: an Envoy rate limit service on
//! Limitador and Redis for tests and demos (see the library documentation). With port 0 the
//! bound address is printed first: `listening on 127.0.0.1:PORT`.

use aigw_rls::limits::Table;
use aigw_rls::service::Service;
use limitador::storage::redis::AsyncRedisStorage;
use limitador::AsyncRateLimiter;
use std::io::Write;
use std::sync::Arc;

const USAGE: &str = "usage: aigw-rls --listen ADDR --redis URL --config PLUGIN.json\n       aigw-rls --envoy-ratelimit-config PLUGIN.json   (prints envoyproxy/ratelimit's config for it)";

fn args() -> Result<(String, String, String), String> {
    let mut listen = None;
    let mut redis = None;
    let mut config = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--listen" => &mut listen,
            "--redis" => &mut redis,
            "--config" => &mut config,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        *slot = Some(
            it.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))?,
        );
    }
    match (listen, redis, config) {
        (Some(l), Some(r), Some(c)) => Ok((l, r, c)),
        _ => Err(USAGE.into()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = argv.as_slice() {
        if flag == "--envoy-ratelimit-config" {
            let text = std::fs::read(path)
                .map_err(|e| format!("cannot read {path}: {e}"))
                .and_then(|raw| aigw_rls::limits::envoy_ratelimit_config(&raw));
            match text {
                Ok(t) => print!("{t}"),
                Err(e) => {
                    eprintln!("aigw-rls: {e}");
                    std::process::exit(2);
                }
            }
            return;
        }
    }
    let (listen, redis, config) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let table = match std::fs::read(&config)
        .map_err(|e| format!("cannot read {config}: {e}"))
        .and_then(|raw| Table::from_plugin_config(&raw).map_err(|e| format!("{config}: {e}")))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("aigw-rls: {e}");
            std::process::exit(2);
        }
    };
    let storage = match AsyncRedisStorage::new(&redis).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aigw-rls: cannot connect to {redis}: {e}");
            std::process::exit(1);
        }
    };
    let limiter = AsyncRateLimiter::new_with_storage(Box::new(storage));
    let service = Arc::new(Service::new(table, limiter));
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("aigw-rls: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(listen);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}");
        let _ = out.flush();
    }
    aigw_rls::server::serve(listener, service).await;
}
