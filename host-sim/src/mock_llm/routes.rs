//! Which API a request asks for (path and method) and how it authenticated.

use super::wire::Family;
use super::AuthUsed;
use hyper::{HeaderMap, Method};

/// What a path asks for.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Route {
    Chat,
    Completions,
    Embeddings,
    Moderations,
    Models,
    Messages,
    CountTokens,
    Gemini { model: String, method: String },
    Bedrock { model: String, stream: bool },
    Metrics,
    Health,
    NotFound,
}

impl Route {
    pub(super) fn family(&self) -> Family {
        match self {
            Route::Messages | Route::CountTokens => Family::Anthropic,
            Route::Gemini { .. } => Family::Gemini,
            Route::Bedrock { .. } => Family::Bedrock,
            _ => Family::OpenAi,
        }
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Route::Chat => "openai.chat",
            Route::Completions => "openai.completions",
            Route::Embeddings => "openai.embeddings",
            Route::Moderations => "openai.moderations",
            Route::Models => "models",
            Route::Messages => "anthropic.messages",
            Route::CountTokens => "anthropic.count_tokens",
            Route::Gemini { method, .. } => match method.as_str() {
                "generateContent" => "gemini.generate",
                "streamGenerateContent" => "gemini.stream",
                "countTokens" => "gemini.count_tokens",
                _ => "gemini.embed",
            },
            Route::Bedrock { stream: false, .. } => "bedrock.converse",
            Route::Bedrock { stream: true, .. } => "bedrock.converse_stream",
            Route::Metrics => "metrics",
            Route::Health => "health",
            Route::NotFound => "not_found",
        }
    }
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b.get(i),
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (Some(&c), _, _) => {
                out.push(c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn route(method: &Method, path: &str) -> Route {
    let post = method == Method::POST;
    if method == Method::GET {
        return match path {
            "/metrics" => Route::Metrics,
            "/health" | "/healthz" | "/ready" => Route::Health,
            p if p.ends_with("/models") => Route::Models,
            _ => Route::NotFound,
        };
    }
    if !post {
        return Route::NotFound;
    }
    if let Some(rest) = path.strip_prefix("/model/") {
        for (suffix, stream) in [("/converse-stream", true), ("/converse", false)] {
            if let Some(id) = rest.strip_suffix(suffix) {
                return Route::Bedrock {
                    model: percent_decode(id),
                    stream,
                };
            }
        }
        return Route::NotFound;
    }
    if let Some(at) = path.rfind("models/") {
        let tail = path.get(at + "models/".len()..).unwrap_or("");
        if let Some((model, method)) = tail.rsplit_once(':') {
            if matches!(
                method,
                "generateContent"
                    | "streamGenerateContent"
                    | "countTokens"
                    | "embedContent"
                    | "batchEmbedContents"
            ) {
                return Route::Gemini {
                    model: percent_decode(model),
                    method: method.to_string(),
                };
            }
        }
    }
    if path.ends_with("/chat/completions") {
        Route::Chat
    } else if path.ends_with("/completions") {
        Route::Completions
    } else if path.ends_with("/embeddings") {
        Route::Embeddings
    } else if path.ends_with("/moderations") {
        Route::Moderations
    } else if path.ends_with("/messages/count_tokens") {
        Route::CountTokens
    } else if path.ends_with("/messages") {
        Route::Messages
    } else {
        Route::NotFound
    }
}

pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// Every credential the request carries, in a fixed order.
pub(super) fn detect_auth(h: &HeaderMap, query: &str) -> Vec<AuthUsed> {
    let mut out = Vec::new();
    let get = |n: &str| {
        h.get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
    };
    if let Some(v) = get("authorization") {
        let (scheme, rest) = v.split_once(' ').unwrap_or(("", v.as_str()));
        let key = if scheme.eq_ignore_ascii_case("AWS4-HMAC-SHA256") {
            // The access key id: Credential=AKID/date/region/service/aws4_request.
            rest.split(',')
                .find_map(|p| p.trim().strip_prefix("Credential="))
                .and_then(|c| c.split('/').next())
                .unwrap_or("")
                .to_string()
        } else {
            rest.trim().to_string()
        };
        out.push(AuthUsed {
            header: "authorization".into(),
            scheme: scheme.to_string(),
            key,
        });
    }
    for name in ["x-api-key", "api-key", "x-goog-api-key"] {
        if let Some(v) = get(name) {
            out.push(AuthUsed {
                header: name.into(),
                scheme: String::new(),
                key: v,
            });
        }
    }
    if let Some(k) = query_param(query, "key") {
        out.push(AuthUsed {
            header: "?key".into(),
            scheme: String::new(),
            key: k,
        });
    }
    out
}
