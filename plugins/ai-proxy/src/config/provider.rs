//! One provider: as written ([`RawProviderConfig`]) and compiled ([`ProviderConfig`]: the
//! provider type resolved, the model mapping compiled, the translator options filled in).

use crate::model_map::ModelMap;
use crate::options::TranslateOptions;
use crate::providers::bedrock::sigv4::{bedrock_host, Credentials};
use crate::providers::catalogue::CATALOGUE;
use crate::providers::{PathOptions, Protocol as Wire, Provider};
use aigw::config::ConfigError;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// The API called on an OpenAI-protocol provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum UpstreamApi {
    /// Chat completions (`/chat/completions`).
    #[default]
    #[serde(alias = "chat_completions", alias = "chat-completions")]
    Chat,
    /// The Responses API (`/responses`): chat and Anthropic clients are translated to it.
    Responses,
}

/// Knobs of the request translators (see [`TranslateOptions`]).
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TranslateConfig {
    /// `max_tokens` for Anthropic/Bedrock when the client sent none (default 4096).
    #[serde(default)]
    pub default_max_tokens: Option<u32>,
    /// Thinking budgets for `reasoning_effort` minimal/low/medium/high.
    #[serde(default)]
    pub thinking_budgets: Option<[u32; 4]>,
    /// Send `max_completion_tokens` instead of `max_tokens` to OpenAI-style upstreams.
    #[serde(default)]
    pub use_max_completion_tokens: Option<bool>,
    /// Send Gemini tool schemas as `parametersJsonSchema` (default true).
    #[serde(default)]
    pub gemini_json_schema: Option<bool>,
}

impl TranslateConfig {
    /// The translator options: the defaults, overridden by what is set.
    fn options(&self) -> TranslateOptions {
        let mut opts = TranslateOptions::default();
        if let Some(v) = self.default_max_tokens {
            opts.default_max_tokens = v;
        }
        if let Some(v) = self.thinking_budgets {
            opts.thinking_budgets = v;
        }
        if let Some(v) = self.use_max_completion_tokens {
            opts.use_max_completion_tokens = v;
        }
        if let Some(v) = self.gemini_json_schema {
            opts.gemini_json_schema = v;
        }
        opts
    }
}

/// One provider as configured (compiled into a [`ProviderConfig`]).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "ProviderConfig"))]
#[serde(deny_unknown_fields)]
pub struct RawProviderConfig {
    /// A name for logs, headers and the usage record (defaults to the type).
    #[serde(default)]
    pub id: String,
    /// The provider type (`openai`, `azure`, `anthropic`, `gemini`, `bedrock`, `qwen`,
    /// `deepseek`, `moonshot`, `zhipu`, `mistral`, `groq`, `openrouter`, `ollama`, `vllm`,
    /// `openai-compatible`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Envoy cluster for this provider; written to `cluster_header` (and the route cache
    /// cleared) so a route with `cluster_header` sends the request there.
    #[serde(default)]
    pub cluster: Option<String>,
    /// `:authority` sent upstream (defaults to the catalogue host).
    #[serde(default)]
    pub host: Option<String>,
    /// Upstream mode: the endpoint address (`host:port`) Envoy reports as `upstream.address`
    /// when this provider is the chosen host.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Overrides the catalogue base path.
    #[serde(default)]
    pub base_path: Option<String>,
    /// API keys; one is chosen per request.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub api_keys: Vec<String>,
    /// Model mapping: an object `{pattern: target}` (exact names first, then longer prefixes,
    /// regexes, `*` last) or an ordered array of `{"from": pattern, "to": target}`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "model_mapping_schema"))]
    pub model_mapping: Option<Value>,
    /// A fixed upstream model, used where the model must be known before the body (Gemini and
    /// Bedrock paths, Azure deployments) and for every request when set.
    #[serde(default)]
    pub model: Option<String>,
    /// Model ids listed by `GET /v1/models` for this provider.
    #[serde(default)]
    pub models: Vec<String>,
    /// Reject models no mapping rule matches (404 `model_not_found`) instead of passing them.
    #[serde(default)]
    pub strict_models: bool,
    /// Azure deployment name (default: the upstream model).
    #[serde(default)]
    pub azure_deployment: Option<String>,
    /// Azure `api-version`; without it the version-less `/openai/v1/...` URLs are used.
    #[serde(default)]
    pub azure_api_version: Option<String>,
    /// `anthropic-version` header (default `2023-06-01`).
    #[serde(default)]
    pub anthropic_version: Option<String>,
    /// Bedrock region, e.g. `us-east-1`.
    #[serde(default)]
    pub bedrock_region: Option<String>,
    /// Bedrock access key id (SigV4).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub bedrock_access_key_id: Option<String>,
    /// Bedrock secret access key (SigV4).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub bedrock_secret_access_key: Option<String>,
    /// Bedrock session token (SigV4, temporary credentials).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub bedrock_session_token: Option<String>,
    /// Request translation options for this provider.
    #[serde(default)]
    pub translate: TranslateConfig,
    /// The API to call on an OpenAI-protocol provider: `chat` (default, chat completions) or
    /// `responses` (chat and Anthropic clients are translated to the Responses API; only for
    /// providers that serve it: openai, azure, groq, vllm).
    #[serde(default)]
    pub api: UpstreamApi,
}

/// One provider, checked and compiled: what the handlers use.
pub struct ProviderConfig {
    /// A name for logs, headers and the usage record (the type's name when not configured).
    pub id: String,
    /// The provider type.
    provider: Provider,
    /// The API called upstream (`Responses` only on providers that serve it).
    api: UpstreamApi,
    /// Envoy cluster for this provider (see [`RawProviderConfig::cluster`]).
    pub cluster: Option<String>,
    /// The `:authority` sent upstream (configured, or the catalogue's; never empty).
    authority: String,
    /// Upstream mode: the endpoint address (`host:port`) of this provider.
    pub endpoint: Option<String>,
    /// Base path and Azure settings that shape the upstream path.
    path: PathOptions,
    /// API keys (non-empty, single-line); one is chosen per request.
    pub api_keys: Vec<String>,
    /// A fixed upstream model.
    pub model: Option<String>,
    /// The models `GET /v1/models` lists: `models`, then the mapping's exact names.
    listed: Vec<String>,
    /// Reject models no mapping rule matches.
    pub strict_models: bool,
    /// `anthropic-version` header override.
    pub anthropic_version: Option<String>,
    /// Bedrock region.
    pub bedrock_region: Option<String>,
    /// SigV4 credentials (Bedrock), when both halves are configured.
    sigv4: Option<Credentials>,
    /// The compiled model mapping.
    pub map: ModelMap,
    /// The translator options.
    pub opts: TranslateOptions,
}

/// Shows what identifies the provider, never its credentials.
impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("api", &self.api)
            .field("authority", &self.authority)
            .field("api_keys", &self.api_keys.len())
            .field("sigv4", &self.sigv4.is_some())
            .finish_non_exhaustive()
    }
}

/// The accepted provider type names, for the error that rejects another.
fn provider_names() -> String {
    CATALOGUE
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ProviderConfig {
    /// Checks and compiles the provider at `at` (its field path, e.g. `providers[0]`).
    pub(crate) fn compile(raw: RawProviderConfig, at: &str) -> Result<ProviderConfig, ConfigError> {
        let err = |field: &str, reason: String| ConfigError::new(format!("{at}.{field}"), reason);
        let provider = Provider::from_name(&raw.kind).ok_or_else(|| {
            err(
                "type",
                format!("unknown provider type: use one of {}", provider_names()),
            )
        })?;
        let spec = provider.spec();
        let serves_responses =
            matches!(spec.protocol, Wire::ChatCompletions) && spec.endpoints.responses;
        if raw.api == UpstreamApi::Responses && !serves_responses {
            return Err(err(
                "api",
                format!(
                    "provider type `{}` does not serve the Responses API (openai, azure, groq and vllm do)",
                    spec.name
                ),
            ));
        }
        let authority = match (&raw.host, provider) {
            (Some(h), _) => h.clone(),
            (None, Provider::Bedrock) => {
                bedrock_host(raw.bedrock_region.as_deref().unwrap_or("us-east-1"))
            }
            (None, _) => spec.default_host.to_string(),
        };
        if authority.is_empty() {
            return Err(err(
                "host",
                format!(
                    "provider type `{}` has no default host; set `host`",
                    spec.name
                ),
            ));
        }
        if let Some(bp) = &raw.base_path {
            if !bp.is_empty() && !bp.starts_with('/') {
                return Err(err("base_path", "must start with `/`".into()));
            }
        }
        for (i, k) in raw.api_keys.iter().enumerate() {
            if k.is_empty() || k.contains(['\r', '\n']) {
                return Err(err(
                    &format!("api_keys[{i}]"),
                    "must be a non-empty single-line string".into(),
                ));
            }
        }
        let map = compile_mapping(raw.model_mapping.as_ref())
            .map_err(|reason| err("model_mapping", reason))?;
        if provider == Provider::Bedrock {
            if raw.bedrock_region.as_deref().unwrap_or("").is_empty() && raw.host.is_none() {
                return Err(err(
                    "bedrock_region",
                    "bedrock needs a region (or an explicit host)".into(),
                ));
            }
            if raw.bedrock_access_key_id.is_some() != raw.bedrock_secret_access_key.is_some() {
                return Err(err(
                    "bedrock_secret_access_key",
                    "set both bedrock_access_key_id and bedrock_secret_access_key".into(),
                ));
            }
            if raw.api_keys.is_empty() && raw.bedrock_access_key_id.is_none() {
                return Err(err(
                    "api_keys",
                    "bedrock needs a Bedrock API key, or SigV4 credentials (bedrock_access_key_id and bedrock_secret_access_key) with `hold_headers`".into(),
                ));
            }
        }
        let listed = listed_models(&raw.models, raw.model_mapping.as_ref());
        let sigv4 = match (raw.bedrock_access_key_id, raw.bedrock_secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
                access_key_id,
                secret_access_key,
                session_token: raw.bedrock_session_token,
            }),
            _ => None,
        };
        Ok(ProviderConfig {
            id: if raw.id.is_empty() {
                spec.name.to_string()
            } else {
                raw.id
            },
            provider,
            api: raw.api,
            cluster: raw.cluster,
            authority,
            endpoint: raw.endpoint,
            path: PathOptions {
                base_path: raw.base_path,
                azure_deployment: raw.azure_deployment,
                azure_api_version: raw.azure_api_version,
            },
            api_keys: raw.api_keys,
            model: raw.model,
            listed,
            strict_models: raw.strict_models,
            anthropic_version: raw.anthropic_version,
            bedrock_region: raw.bedrock_region,
            sigv4,
            map,
            opts: raw.translate.options(),
        })
    }

    /// `body` with every credential of this provider (API keys, Bedrock secret) replaced by
    /// `[REDACTED]`: an upstream error that echoes the gateway's key must not hand it to the
    /// client. Values shorter than 6 bytes are left alone (too short to be a real key and too
    /// likely to appear as ordinary text).
    pub fn redact_secrets(&self, body: Vec<u8>) -> Vec<u8> {
        let sigv4 = self
            .sigv4
            .iter()
            .flat_map(|c| std::iter::once(&c.secret_access_key).chain(c.session_token.iter()));
        let secrets = self.api_keys.iter().chain(sigv4).filter(|k| k.len() >= 6);
        let mut body = body;
        for key in secrets {
            let needle = key.as_bytes();
            let mut out = Vec::new();
            let mut rest = &body[..];
            while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
                out.extend_from_slice(&rest[..at]);
                out.extend_from_slice(b"[REDACTED]");
                rest = &rest[at + needle.len()..];
            }
            if !out.is_empty() {
                out.extend_from_slice(rest);
                body = out;
            }
        }
        body
    }

    /// The provider type.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The provider's wire protocol.
    pub fn wire(&self) -> Wire {
        match self.api {
            UpstreamApi::Responses => Wire::Responses,
            UpstreamApi::Chat => self.provider.spec().protocol,
        }
    }

    /// The model names `GET /v1/models` lists for this provider: `models`, then the exact
    /// (non-pattern) names of the mapping.
    pub fn listed_models(&self) -> impl Iterator<Item = &str> {
        self.listed.iter().map(String::as_str)
    }

    /// Whether a mapping rule (exact, prefix, regex or `*`) or a fixed `model` routes `model`.
    pub fn maps_explicitly(&self, model: &str) -> bool {
        self.model.is_some() || self.map.map(model).is_some()
    }

    /// Whether the upstream serves the Responses API itself (Responses clients pass through).
    pub fn serves_responses(&self) -> bool {
        let spec = self.provider.spec();
        matches!(spec.protocol, Wire::ChatCompletions) && spec.endpoints.responses
    }

    /// The `:authority` to send.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Path options for [`crate::providers::upstream_path`].
    pub fn path_options(&self) -> &PathOptions {
        &self.path
    }

    /// Whether requests are signed with SigV4 (Bedrock credentials and `hold_headers`); the
    /// API keys are then not used.
    pub fn signs_sigv4(&self, hold_headers: bool) -> bool {
        hold_headers && self.provider == Provider::Bedrock && self.sigv4.is_some()
    }

    /// SigV4 credentials, when configured.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.sigv4.as_ref()
    }

    /// Whether the upstream path contains the model (so it must be known at request headers).
    pub fn path_needs_model(&self) -> bool {
        match self.wire() {
            Wire::GeminiGenerateContent | Wire::BedrockConverse => true,
            Wire::ChatCompletions => {
                self.provider == Provider::Azure
                    && self.path.azure_api_version.is_some()
                    && self.path.azure_deployment.is_none()
            }
            _ => false,
        }
    }

    /// Maps a client model to the upstream model: the fixed `model` wins, then the mapping;
    /// `None` when `strict_models` is set and nothing matched.
    pub fn map_model(&self, model: &str) -> Option<String> {
        if let Some(m) = &self.model {
            return Some(m.clone());
        }
        match self.map.map(model) {
            Some(m) => Some(m.into_owned()),
            None if self.strict_models => None,
            None => Some(model.to_string()),
        }
    }
}

/// `models`, then the exact (non-pattern) names of the mapping, without empty names.
fn listed_models(models: &[String], mapping: Option<&Value>) -> Vec<String> {
    let mut out: Vec<&str> = models.iter().map(String::as_str).collect();
    let plain = |k: &str| !k.contains('*') && !k.starts_with('~');
    match mapping {
        Some(Value::Object(map)) => out.extend(map.keys().map(String::as_str).filter(|k| plain(k))),
        Some(Value::Array(items)) => out.extend(
            items
                .iter()
                .filter_map(|i| i.get("from")?.as_str())
                .filter(|k| plain(k)),
        ),
        _ => {}
    }
    out.into_iter()
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// The schema of `model_mapping`: what [`compile_mapping`] accepts (an object of target
/// strings, or an array of `{"from", "to"}` objects).
#[cfg(feature = "schema")]
fn model_mapping_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Model mapping: an object `{pattern: target}` (exact names first, then longer prefixes, regexes `~...`, `*` last) or an ordered array of `{\"from\": pattern, \"to\": target}`.",
        "anyOf": [
            {"type": "object", "additionalProperties": {"type": "string"}},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["from", "to"],
                    "properties": {"from": {"type": "string"}, "to": {"type": "string"}}
                }
            },
            {"type": "null"}
        ]
    })
}

/// Compiles the `model_mapping` value (object or array form) into an ordered [`ModelMap`].
pub fn compile_mapping(value: Option<&Value>) -> Result<ModelMap, String> {
    let mut rules: Vec<(String, String)> = Vec::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let to = v
                    .as_str()
                    .ok_or_else(|| format!("target of `{k}` must be a string"))?;
                rules.push((k.clone(), to.to_string()));
            }
            // Most specific first: exact names, longer prefixes, regexes, then `*`.
            rules.sort_by_key(|(k, _)| {
                if k == "*" {
                    (3, 0)
                } else if k.starts_with('~') {
                    (2, 0)
                } else if let Some(p) = k.strip_suffix('*') {
                    (1, usize::MAX - p.len())
                } else {
                    (0, 0)
                }
            });
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let from = item.get("from").and_then(Value::as_str);
                let to = item.get("to").and_then(Value::as_str);
                match (from, to) {
                    (Some(f), Some(t)) => rules.push((f.to_string(), t.to_string())),
                    _ => {
                        return Err(format!(
                            "[{i}] must be {{\"from\": string, \"to\": string}}"
                        ))
                    }
                }
            }
        }
        Some(_) => return Err("must be an object or an array of {from, to}".into()),
    }
    ModelMap::new(&rules).map_err(|e| e.to_string())
}
