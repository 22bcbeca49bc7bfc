//! The plugin configuration: providers, key selection, limits and reporting options, parsed
//! and validated once at configure time (model maps compiled, provider types resolved).
//!
//! ```json
//! {
//!   "providers": [
//!     { "id": "main", "type": "openai", "api_keys": ["sk-1", "sk-2"],
//!       "model_mapping": { "gpt-4": "gpt-4o", "*": "" } }
//!   ],
//!   "key_selection": "round_robin",
//!   "key_cooldown_secs": 60
//! }
//! ```
//!
//! See the plugin README for every field.

use crate::model_map::ModelMap;
use crate::options::TranslateOptions;
use crate::providers::bedrock::sigv4::{bedrock_host, Credentials};
use crate::providers::{PathOptions, Protocol as Wire, Provider};
use aigw::config::{ConfigError, PlainConfig};
use serde::Deserialize;
use serde_json::Value;

/// Where the plugin runs in Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// An ordinary (downstream) HTTP filter: one provider per route.
    #[default]
    Downstream,
    /// An upstream HTTP filter, run once per attempt: the provider is the one whose `endpoint`
    /// is the host Envoy picked (`upstream.address`), so route retries fail over.
    Upstream,
}

/// How an API key is picked for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeySelection {
    /// Each request takes the next key (per worker).
    #[default]
    RoundRobin,
    /// A pseudo-random key per request.
    Random,
    /// The same key for the same consumer (hash of the consumer header).
    Consumer,
}

/// Which model name responses report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReportModel {
    /// The model the client asked for.
    #[default]
    Request,
    /// The model the provider says it used.
    Upstream,
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

/// One provider as configured.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
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
    pub api: Option<String>,

    /// Resolved provider type.
    #[serde(skip)]
    pub provider: Option<Provider>,
    /// `api: responses` was configured (and validated).
    #[serde(skip)]
    pub responses_api: bool,
    /// Compiled model mapping.
    #[serde(skip)]
    pub map: ModelMap,
    /// Resolved translator options.
    #[serde(skip)]
    pub opts: TranslateOptions,
}

impl ProviderConfig {
    /// `body` with every credential of this provider (API keys, Bedrock secret) replaced by
    /// `[REDACTED]`: an upstream error that echoes the gateway's key must not hand it to the
    /// client. Values shorter than 6 bytes are left alone (too short to be a real key and too
    /// likely to appear as ordinary text).
    pub fn redact_secrets(&self, body: Vec<u8>) -> Vec<u8> {
        let secrets = self
            .api_keys
            .iter()
            .chain(self.bedrock_secret_access_key.iter())
            .chain(self.bedrock_session_token.iter())
            .filter(|k| k.len() >= 6);
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

    /// The resolved provider (validated at configure time; OpenAI-compatible otherwise).
    pub fn provider(&self) -> Provider {
        self.provider.unwrap_or(Provider::OpenAiCompatible)
    }

    /// The provider's wire protocol.
    pub fn wire(&self) -> Wire {
        if self.responses_api {
            return Wire::Responses;
        }
        self.provider().spec().protocol
    }

    /// The model names `GET /v1/models` lists for this provider: `models`, then the exact
    /// (non-pattern) names of the mapping.
    pub fn listed_models(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.models.iter().map(String::as_str).collect();
        let plain = |k: &str| !k.contains('*') && !k.starts_with('~');
        match &self.model_mapping {
            Some(Value::Object(map)) => {
                out.extend(map.keys().map(String::as_str).filter(|k| plain(k)))
            }
            Some(Value::Array(items)) => out.extend(
                items
                    .iter()
                    .filter_map(|i| i.get("from")?.as_str())
                    .filter(|k| plain(k)),
            ),
            _ => {}
        }
        out.retain(|m| !m.is_empty());
        out
    }

    /// Whether a mapping rule (exact, prefix, regex or `*`) or a fixed `model` routes `model`.
    pub fn maps_explicitly(&self, model: &str) -> bool {
        self.model.is_some() || self.map.map(model).is_some()
    }

    /// Whether the upstream serves the Responses API itself (Responses clients pass through).
    pub fn serves_responses(&self) -> bool {
        let spec = self.provider().spec();
        matches!(spec.protocol, Wire::ChatCompletions) && spec.endpoints.responses
    }

    /// The `:authority` to send.
    pub fn authority(&self) -> String {
        if let Some(h) = &self.host {
            return h.clone();
        }
        if self.provider() == Provider::Bedrock {
            return bedrock_host(self.bedrock_region.as_deref().unwrap_or("us-east-1"));
        }
        self.provider().spec().default_host.to_string()
    }

    /// Path options for [`crate::providers::upstream_path`].
    pub fn path_options(&self) -> PathOptions {
        PathOptions {
            base_path: self.base_path.clone(),
            azure_deployment: self.azure_deployment.clone(),
            azure_api_version: self.azure_api_version.clone(),
        }
    }

    /// Whether requests are signed with SigV4 (Bedrock credentials and `hold_headers`); the
    /// API keys are then not used.
    pub fn signs_sigv4(&self, hold_headers: bool) -> bool {
        hold_headers && self.provider() == Provider::Bedrock && self.bedrock_access_key_id.is_some()
    }

    /// SigV4 credentials, when configured.
    pub fn credentials(&self) -> Option<Credentials> {
        Some(Credentials {
            access_key_id: self.bedrock_access_key_id.clone()?,
            secret_access_key: self.bedrock_secret_access_key.clone()?,
            session_token: self.bedrock_session_token.clone(),
        })
    }

    /// Whether the upstream path contains the model (so it must be known at request headers).
    pub fn path_needs_model(&self) -> bool {
        match self.wire() {
            Wire::GeminiGenerateContent | Wire::BedrockConverse => true,
            Wire::ChatCompletions => {
                self.provider() == Provider::Azure
                    && self.azure_api_version.is_some()
                    && self.azure_deployment.is_none()
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

    fn validate(&mut self, at: &str) -> Result<(), ConfigError> {
        let provider = Provider::from_name(&self.kind).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.type"),
                format!("unknown provider type `{}`", self.kind),
            )
        })?;
        self.provider = Some(provider);
        if self.id.is_empty() {
            self.id = provider.spec().name.to_string();
        }
        self.responses_api = match self.api.as_deref() {
            None | Some("chat") => false,
            Some("responses") if self.serves_responses() => true,
            Some("responses") => {
                return Err(ConfigError::new(
                    format!("{at}.api"),
                    format!(
                        "provider type `{}` does not serve the Responses API (openai, azure, groq and vllm do)",
                        self.kind
                    ),
                ))
            }
            Some(other) => {
                return Err(ConfigError::new(
                    format!("{at}.api"),
                    format!("unknown api `{other}`: use `chat` or `responses`"),
                ))
            }
        };
        if self.authority().is_empty() {
            return Err(ConfigError::new(
                format!("{at}.host"),
                format!(
                    "provider type `{}` has no default host; set `host`",
                    self.kind
                ),
            ));
        }
        if let Some(bp) = &self.base_path {
            if !bp.is_empty() && !bp.starts_with('/') {
                return Err(ConfigError::new(
                    format!("{at}.base_path"),
                    "must start with `/`",
                ));
            }
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.is_empty() || k.contains(['\r', '\n']) {
                return Err(ConfigError::new(
                    format!("{at}.api_keys[{i}]"),
                    "must be a non-empty single-line string",
                ));
            }
        }
        self.map = compile_mapping(self.model_mapping.as_ref())
            .map_err(|reason| ConfigError::new(format!("{at}.model_mapping"), reason))?;
        if provider == Provider::Bedrock {
            if self.bedrock_region.as_deref().unwrap_or("").is_empty() && self.host.is_none() {
                return Err(ConfigError::new(
                    format!("{at}.bedrock_region"),
                    "bedrock needs a region (or an explicit host)",
                ));
            }
            let partial =
                self.bedrock_access_key_id.is_some() != self.bedrock_secret_access_key.is_some();
            if partial {
                return Err(ConfigError::new(
                    format!("{at}.bedrock_secret_access_key"),
                    "set both bedrock_access_key_id and bedrock_secret_access_key",
                ));
            }
            if self.api_keys.is_empty() && self.bedrock_access_key_id.is_none() {
                return Err(ConfigError::new(
                    format!("{at}.api_keys"),
                    "bedrock needs a Bedrock API key, or SigV4 credentials (bedrock_access_key_id and bedrock_secret_access_key) with `hold_headers`",
                ));
            }
        }
        let t = &self.translate;
        let mut opts = TranslateOptions::default();
        if let Some(v) = t.default_max_tokens {
            opts.default_max_tokens = v;
        }
        if let Some(v) = t.thinking_budgets {
            opts.thinking_budgets = v;
        }
        if let Some(v) = t.use_max_completion_tokens {
            opts.use_max_completion_tokens = v;
        }
        if let Some(v) = t.gemini_json_schema {
            opts.gemini_json_schema = v;
        }
        self.opts = opts;
        Ok(())
    }
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

fn default_consumer_header() -> String {
    aigw::contract::CONSUMER_HEADER.into()
}
fn default_allowed_models_header() -> String {
    aigw::contract::ALLOWED_MODELS_HEADER.into()
}
fn default_cluster_header() -> String {
    aigw::contract::CLUSTER_HEADER.into()
}
fn default_cooldown() -> u64 {
    60
}
fn default_cooldown_statuses() -> Vec<u16> {
    vec![401, 403, 429]
}
fn default_request_limit() -> usize {
    10 << 20
}
fn default_response_limit() -> usize {
    10 << 20
}
fn default_event_limit() -> usize {
    1 << 20
}
fn yes() -> bool {
    true
}

/// The whole plugin configuration (per route when `_rules_` are used).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `downstream` (default) or `upstream` (Envoy upstream HTTP filter, for failover).
    #[serde(default)]
    pub mode: Mode,
    /// The providers. Downstream mode uses the one named by `provider` (default the first).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub providers: Vec<ProviderConfig>,
    /// Downstream mode: the id of the provider to use.
    #[serde(default)]
    pub provider: Option<String>,
    /// How a key is chosen.
    #[serde(default)]
    pub key_selection: KeySelection,
    /// Header naming the consumer for `consumer` key selection.
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
    /// Header with the consumer's model policy (set by ai-auth); `GET /v1/models` lists only
    /// the models it permits. Empty string: ignore it.
    #[serde(default = "default_allowed_models_header")]
    pub allowed_models_header: String,
    /// Seconds a key is skipped after a cooldown status.
    #[serde(default = "default_cooldown")]
    pub key_cooldown_secs: u64,
    /// Upstream statuses that put the key on cooldown.
    #[serde(default = "default_cooldown_statuses")]
    pub cooldown_statuses: Vec<u16>,
    /// Header set to the provider's `cluster` (for a route's `cluster_header`).
    #[serde(default = "default_cluster_header")]
    pub cluster_header: String,
    /// Largest request body translated (413 above).
    #[serde(default = "default_request_limit")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub max_request_body_bytes: usize,
    /// Largest non-streamed response (or error) body translated.
    #[serde(default = "default_response_limit")]
    pub max_response_body_bytes: usize,
    /// Largest single stream event.
    #[serde(default = "default_event_limit")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1024)))]
    pub max_event_bytes: usize,
    /// Which model responses report.
    #[serde(default)]
    pub report_model: ReportModel,
    /// Add `x-aigw-provider` / `x-aigw-model` response headers.
    #[serde(default = "yes")]
    pub response_headers: bool,
    /// Publish the `aigw.usage` filter-state property when the response ends.
    #[serde(default = "yes")]
    pub usage_property: bool,
    /// Hold the request headers until the body is read, and set the body-dependent ones then:
    /// SigV4 for Bedrock, and the model in Gemini/Bedrock/Azure URLs taken from the body. The
    /// gateway must deliver the body while headers are held: Envoy 1.35+ with the plugin's
    /// `allow_on_headers_stop_iteration: true`, or Higress (ABI 0_2_100, the `higress` build).
    /// On other hosts a held request would wait for its timeout: leave it off there.
    #[serde(default)]
    pub hold_headers: bool,
}

impl Config {
    /// The provider for a downstream request.
    pub fn downstream_provider(&self) -> Option<&ProviderConfig> {
        match &self.provider {
            Some(id) => self.providers.iter().find(|p| &p.id == id),
            None => self.providers.first(),
        }
    }

    /// The provider whose endpoint is `address` (upstream mode). Compares `host:port`
    /// exactly, then the host alone.
    pub fn provider_for_address(&self, address: &str) -> Option<&ProviderConfig> {
        let host = |a: &str| a.rsplit_once(':').map_or(a, |(h, _)| h).to_string();
        self.providers
            .iter()
            .find(|p| p.endpoint.as_deref() == Some(address))
            .or_else(|| {
                let want = host(address);
                self.providers
                    .iter()
                    .find(|p| p.endpoint.as_deref().map(host).as_deref() == Some(want.as_str()))
            })
    }
}

impl PlainConfig for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.providers.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "at least one provider is required",
            ));
        }
        for (i, p) in self.providers.iter_mut().enumerate() {
            p.validate(&format!("providers[{i}]"))?;
        }
        for i in 0..self.providers.len() {
            let (head, tail) = self.providers.split_at(i + 1);
            if let Some(p) = head.last() {
                if tail.iter().any(|q| q.id == p.id) {
                    return Err(ConfigError::new(
                        format!("providers[{i}].id"),
                        format!("duplicate provider id `{}`", p.id),
                    ));
                }
            }
        }
        if let Some(id) = &self.provider {
            if !self.providers.iter().any(|p| &p.id == id) {
                return Err(ConfigError::new(
                    "provider",
                    format!("no provider has id `{id}`"),
                ));
            }
        }
        for (i, p) in self.providers.iter().enumerate() {
            if p.provider() == Provider::Bedrock && p.api_keys.is_empty() && !self.hold_headers {
                return Err(ConfigError::new(
                    format!("providers[{i}].bedrock_access_key_id"),
                    "SigV4 signs the body, so it needs `hold_headers: true` (and a gateway that holds headers while delivering the body); or use a Bedrock API key in `api_keys`",
                ));
            }
        }
        if self.mode == Mode::Upstream {
            for (i, p) in self.providers.iter().enumerate() {
                if p.endpoint.as_deref().unwrap_or("").is_empty() {
                    return Err(ConfigError::new(
                        format!("providers[{i}].endpoint"),
                        "upstream mode needs each provider's endpoint address (host:port)",
                    ));
                }
            }
        }
        if self.max_request_body_bytes == 0 {
            return Err(ConfigError::new(
                "max_request_body_bytes",
                "must be greater than 0",
            ));
        }
        if self.max_event_bytes < 1024 {
            return Err(ConfigError::new("max_event_bytes", "must be at least 1024"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        aigw::config::parse::<Config>(json.as_bytes())
    }

    #[test]
    fn object_mapping_is_ordered_by_specificity() {
        let c = parse(
            r#"{"providers":[{"type":"openai","model_mapping":{"*":"d","gpt-*":"p","gpt-4*":"p4","gpt-4o":"e","~^o(\\d)$":"o$1"}}]}"#,
        )
        .unwrap();
        let p = &c.providers[0];
        assert_eq!(p.map_model("gpt-4o").as_deref(), Some("e"));
        assert_eq!(p.map_model("gpt-4-turbo").as_deref(), Some("p4"));
        assert_eq!(p.map_model("gpt-3.5").as_deref(), Some("p"));
        assert_eq!(p.map_model("o3").as_deref(), Some("o3"));
        assert_eq!(p.map_model("claude").as_deref(), Some("d"));
        assert_eq!(p.id, "openai");
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"providers":[{"type":"nope"}]}"#).unwrap_err();
        assert_eq!(e.path(), "providers[0].type");
        let e =
            parse(r#"{"providers":[{"type":"openai","model_mapping":{"~(":"x"}}]}"#).unwrap_err();
        assert_eq!(e.path(), "providers[0].model_mapping");
        let e = parse(r#"{"providers":[{"type":"openai-compatible"}]}"#).unwrap_err();
        assert_eq!(e.path(), "providers[0].host");
        let e = parse(r#"{"providers":[{"type":"bedrock","bedrock_region":"us-east-1"}]}"#)
            .unwrap_err();
        assert_eq!(e.path(), "providers[0].api_keys");
        let e = parse(r#"{"mode":"upstream","providers":[{"type":"openai"}]}"#).unwrap_err();
        assert_eq!(e.path(), "providers[0].endpoint");
        let e = parse(r#"{"providers":[{"type":"openai"},{"type":"openai"}]}"#).unwrap_err();
        assert!(e.reason().contains("duplicate"), "{e}");
        let e = parse(r#"{"providers":[{"type":"openai","api_key":"x"}]}"#).unwrap_err();
        assert_eq!(e.path(), "providers[0].api_key");
        let e = parse(r#"{"providers":[]}"#).unwrap_err();
        assert_eq!(e.path(), "providers");
    }

    #[test]
    fn address_lookup() {
        let c = parse(
            r#"{"mode":"upstream","providers":[{"id":"a","type":"openai","endpoint":"10.0.0.1:443"},{"id":"b","type":"anthropic","endpoint":"api.anthropic.com:443"}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.provider_for_address("10.0.0.1:443")
                .map(|p| p.id.as_str()),
            Some("a")
        );
        assert_eq!(
            c.provider_for_address("api.anthropic.com:8443")
                .map(|p| p.id.as_str()),
            Some("b")
        );
        assert!(c.provider_for_address("10.0.0.9:443").is_none());
    }
}
