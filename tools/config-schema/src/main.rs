//! `config-schema [DIR]`: writes `DIR/<plugin>.schema.json` (default `dist/`) for every
//! plugin; see the crate docs.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "dist".into()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("config-schema: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for plugin in config_schema::PLUGINS {
        let Some(schema) = config_schema::schema(plugin) else {
            continue;
        };
        let text = config_schema::render(&schema);
        let path = dir.join(config_schema::file_name(plugin));
        // Unchanged files keep their mtime (watchers, make).
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            println!("{:<44} {:>8} (unchanged)", path.display(), text.len());
            continue;
        }
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("config-schema: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{:<44} {:>8}", path.display(), text.len());
    }
    ExitCode::SUCCESS
}
