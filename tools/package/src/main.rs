//! `aigw-package [--root DIR] [--dist DIR] [--schemas DIR] [--out DIR] [PLUGIN...]`: writes
//! each plugin as a Higress plugin image (OCI image layout) under `--out` (default
//! `dist/oci`). `make package` runs it after `make build` and `scripts/config-schemas.sh`.

use aigw_package::{run, Options};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: aigw-package [--root DIR] [--dist DIR] [--schemas DIR] [--out DIR] [PLUGIN...]
  --root     workspace root (plugins/<p>/README.md, plugins/<p>/example.json); default .
  --dist     built modules (<p>.wasm, higress/<p>.wasm); default ROOT/dist
  --schemas  configuration schemas (<p>.schema.json); default DIST
  --out      where the OCI image layouts go; default DIST/oci
  PLUGIN     plugins to package; default all";

fn main() -> ExitCode {
    let mut root = PathBuf::from(".");
    let (mut dist, mut schemas, mut out) = (None, None, None);
    let mut plugins = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let slot = match a.as_str() {
            "--root" => None,
            "--dist" => Some(&mut dist),
            "--schemas" => Some(&mut schemas),
            "--out" => Some(&mut out),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            s if s.starts_with('-') => {
                eprintln!("aigw-package: unknown option {s}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => {
                plugins.push(a);
                continue;
            }
        };
        let Some(value) = args.next() else {
            eprintln!("aigw-package: {a} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match slot {
            Some(s) => *s = Some(PathBuf::from(value)),
            None => root = PathBuf::from(value),
        }
    }
    let dist = dist.unwrap_or_else(|| root.join("dist"));
    let opts = Options {
        schemas: schemas.unwrap_or_else(|| dist.clone()),
        out: out.unwrap_or_else(|| dist.join("oci")),
        root,
        dist,
        plugins,
    };
    match run(&opts) {
        Ok(done) => {
            for p in done {
                println!(
                    "{:<44} {}  wasm {} bytes",
                    p.dir.display(),
                    p.manifest_digest,
                    p.wasm_bytes
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aigw-package: {e}");
            ExitCode::FAILURE
        }
    }
}
