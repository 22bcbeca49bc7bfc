//! Helpers for media references in content parts: `data:` URLs and MIME types.

/// A parsed `data:<mime>;base64,<data>` URL (borrowed from the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataUrl<'a> {
    /// MIME type, e.g. `image/png`.
    pub mime: &'a str,
    /// Base64 payload.
    pub data: &'a str,
}

/// Parses a base64 `data:` URL. Returns `None` for other URLs and for non-base64 data URLs.
pub fn parse_data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    // Parameters such as `;charset=...` may precede `;base64`: keep only the type.
    let mime = mime.split(';').next().unwrap_or(mime);
    if mime.is_empty() {
        return None;
    }
    Some(DataUrl { mime, data })
}

/// Builds a `data:` URL from a MIME type and base64 data.
pub fn data_url(mime: &str, data: &str) -> String {
    let mut s = String::with_capacity(13 + mime.len() + data.len());
    s.push_str("data:");
    s.push_str(mime);
    s.push_str(";base64,");
    s.push_str(data);
    s
}

/// True for `http://` and `https://` URLs.
pub fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// The short image format (`png`, `jpeg`, `gif`, `webp`) for an image MIME type that Anthropic
/// and Bedrock accept.
pub fn image_format(mime: &str) -> Option<&'static str> {
    match mime.to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

/// A MIME type guessed from a URL's file extension.
pub fn mime_from_extension(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "txt" => "text/plain",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("data:image/png;base64,iVBO"),
            Some(DataUrl {
                mime: "image/png",
                data: "iVBO"
            })
        );
        assert_eq!(
            parse_data_url("data:text/plain;charset=utf-8;base64,aGk="),
            Some(DataUrl {
                mime: "text/plain",
                data: "aGk="
            })
        );
        assert_eq!(parse_data_url("data:text/plain,hello"), None);
        assert_eq!(parse_data_url("https://x/y.png"), None);
        assert_eq!(data_url("image/gif", "R0lG"), "data:image/gif;base64,R0lG");
        assert_eq!(image_format("image/JPG"), Some("jpeg"));
        assert_eq!(image_format("image/tiff"), None);
        assert_eq!(
            mime_from_extension("gs://b/a/photo.JPG?x=1"),
            Some("image/jpeg")
        );
    }
}
