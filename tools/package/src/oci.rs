//! The bytes of a Higress plugin image: the `plugin.wasm` layer (a one-file tar, gzipped), the
//! image config, the manifest, and the OCI image layout directory that holds them.
//!
//! Every byte is a function of the inputs alone (no clock, no user or host name, a fixed gzip
//! header and level, JSON written with a fixed key order), so the same module, README and
//! spec.yaml always give the same digests.
//!
//! Media types (facts taken from the public sources, not their code):
//! * Higress's "Wasm Plugin Image Specification" (higress.io, docs/latest/user/wasm-image-spec):
//!   one file per layer; `spec.yaml` as `application/vnd.module.wasm.spec.v1+yaml`, `README.md` as
//!   `application/vnd.module.wasm.doc.v1+markdown`; `plugin.wasm` in the LAST layer, a tar+gzip
//!   layer `application/vnd.oci.image.layer.v1.tar+gzip`. Higress's own release workflow
//!   (alibaba/higress `.github/workflows/build-and-push-wasm-plugin-image.yaml`) pushes the
//!   layers in the order README, spec.yaml, plugin.tar.gz with `oras push`.
//! * The fetcher both Higress (its Istio fork, higress-group/istio) and Istio use
//!   (`pkg/wasm/imagefetcher.go`): an OCI manifest is first read as the "compat" variant, whose
//!   wasm is `plugin.wasm` inside the last layer when that layer is
//!   `application/vnd.oci.image.layer.v1.tar+gzip`; the other variant (a raw
//!   `application/vnd.module.wasm.content.layer.v1+wasm` layer) is accepted only in an image of
//!   exactly two layers, so it cannot carry README and spec.yaml as well. Hence the tar+gzip
//!   layer, last.
//! * solo-io/wasm `spec/spec-compat.md`: a compat image with an OCI tar+gzip layer carries the
//!   manifest annotation `module.wasm.image/variant: compat`.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Media type of the image manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the image index (`index.json`).
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of the image config.
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of the layer holding `plugin.wasm` (tar+gzip).
pub const WASM_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of the `spec.yaml` layer (Higress).
pub const SPEC_LAYER: &str = "application/vnd.module.wasm.spec.v1+yaml";
/// Media type of the `README.md` layer (Higress).
pub const README_LAYER: &str = "application/vnd.module.wasm.doc.v1+markdown";

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256:");
    for b in Sha256::digest(bytes) {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// A ustar archive holding one regular file `name` (mode 0644, owner 0:0, mtime 0).
pub fn tar_one(name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    if name.len() > 100 || !name.is_ascii() {
        return Err(format!(
            "tar member name {name:?} is not a short ASCII name"
        ));
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], 0);
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    // Six octal digits, NUL, space: the classic checksum field.
    let field = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(field.as_bytes());
    let padded = data.len().div_ceil(512) * 512;
    let mut out = Vec::with_capacity(512 + padded + 1024);
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(512 + padded + 1024, 0);
    Ok(out)
}

/// Writes `value` as zero-padded octal filling `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let bytes = text.as_bytes();
    let start = bytes.len().saturating_sub(width);
    field[..width].copy_from_slice(&bytes[start..]);
    field[width] = 0;
}

/// gzip of `data` with a fixed header (no name, mtime 0) at the best compression level.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data).map_err(|e| format!("gzip: {e}"))?;
    enc.finish().map_err(|e| format!("gzip: {e}"))
}

/// One blob of the image and how the manifest describes it.
pub struct Blob {
    /// Media type in the manifest.
    pub media_type: &'static str,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// File name recorded as the `org.opencontainers.image.title` annotation (what
    /// `oras pull` names the file), if any.
    pub title: Option<&'static str>,
}

impl Blob {
    fn descriptor(&self) -> String {
        let mut d = format!(
            "{{\"mediaType\":{},\"digest\":\"{}\",\"size\":{}",
            json_str(self.media_type),
            digest(&self.bytes),
            self.bytes.len()
        );
        if let Some(t) = self.title {
            d.push_str(&format!(
                ",\"annotations\":{{\"org.opencontainers.image.title\":{}}}",
                json_str(t)
            ));
        }
        d.push('}');
        d
    }
}

/// A plugin image: README, spec.yaml and the wasm layer, in that order (wasm last).
pub struct Image {
    /// The layers, first to last.
    pub layers: Vec<Blob>,
    /// Manifest annotations, in order.
    pub annotations: Vec<(&'static str, String)>,
}

impl Image {
    /// The image config: platform wasm/wasip1 and one diff id per layer (the digest of the
    /// layer's uncompressed content: the tar for the gzip layer, the file for the others).
    pub fn config(&self) -> Result<Vec<u8>, String> {
        let mut ids = Vec::new();
        for l in &self.layers {
            let id = if l.media_type == WASM_LAYER {
                let mut dec = flate2::read::GzDecoder::new(l.bytes.as_slice());
                let mut raw = Vec::new();
                std::io::Read::read_to_end(&mut dec, &mut raw)
                    .map_err(|e| format!("gunzip: {e}"))?;
                digest(&raw)
            } else {
                digest(&l.bytes)
            };
            ids.push(format!("\"{id}\""));
        }
        Ok(format!(
            "{{\"architecture\":\"wasm\",\"os\":\"wasip1\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
            ids.join(",")
        )
        .into_bytes())
    }

    /// The manifest for `config`.
    pub fn manifest(&self, config: &[u8]) -> Vec<u8> {
        let config = Blob {
            media_type: CONFIG,
            bytes: config.to_vec(),
            title: None,
        };
        let layers: Vec<String> = self.layers.iter().map(Blob::descriptor).collect();
        let ann: Vec<String> = self
            .annotations
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
            .collect();
        format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST}\",\"config\":{},\"layers\":[{}],\"annotations\":{{{}}}}}",
            config.descriptor(),
            layers.join(","),
            ann.join(",")
        )
        .into_bytes()
    }

    /// Writes the image as an OCI image layout in `dir` (replacing what was there), tagged
    /// `tag`. Returns the manifest digest.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<String, String> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| format!("{}: {e}", blobs.display()))?;
        let put = |bytes: &[u8]| -> Result<String, String> {
            let d = digest(bytes);
            let p = blobs.join(d.trim_start_matches("sha256:"));
            std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(d)
        };
        for l in &self.layers {
            put(&l.bytes)?;
        }
        let config = self.config()?;
        put(&config)?;
        let manifest = self.manifest(&config);
        let manifest_digest = put(&manifest)?;
        let index = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"{INDEX}\",\"manifests\":[{{\"mediaType\":\"{MANIFEST}\",\"digest\":\"{manifest_digest}\",\"size\":{},\"annotations\":{{\"org.opencontainers.image.ref.name\":{}}}}}]}}",
            manifest.len(),
            json_str(tag)
        );
        write(&dir.join("index.json"), index.as_bytes())?;
        write(
            &dir.join("oci-layout"),
            b"{\"imageLayoutVersion\":\"1.0.0\"}",
        )?;
        Ok(manifest_digest)
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_header_checksum_and_size_are_right() {
        let t = tar_one("plugin.wasm", b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(t.len(), 512 + 512 + 1024);
        assert_eq!(&t[..11], b"plugin.wasm");
        assert_eq!(&t[124..136], b"00000000010\0");
        let mut h = t[..512].to_vec();
        let stored = std::str::from_utf8(&h[148..154]).unwrap().to_string();
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(u64::from_str_radix(&stored, 8).unwrap(), sum);
        assert_eq!(&t[512..520], b"\0asm\x01\0\0\0");
    }

    #[test]
    fn long_or_non_ascii_names_are_refused() {
        assert!(tar_one(&"a".repeat(101), b"").is_err());
        assert!(tar_one("plügin.wasm", b"").is_err());
    }

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let data = vec![7u8; 10_000];
        let a = gzip(&data).unwrap();
        assert_eq!(a, gzip(&data).unwrap());
        // Header: magic, deflate, no flags, mtime 0.
        assert_eq!(&a[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(a.as_slice()), &mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
