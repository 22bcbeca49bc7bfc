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

mod provider;

pub use provider::{
    compile_mapping, ProviderConfig, RawProviderConfig, TranslateConfig, UpstreamApi,
};

use crate::providers::Provider;
use aigw::config::{ConfigError, PluginConfig};
use serde::Deserialize;

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

/// The whole plugin configuration (per route when `_rules_` are used), with providers of type
/// `P`: [`RawConfig`] as written, [`Config`] once compiled (every provider checked and
/// compiled, ids unique, the settings consistent).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "Config"))]
#[serde(deny_unknown_fields)]
pub struct Config<P = ProviderConfig> {
    /// `downstream` (default) or `upstream` (Envoy upstream HTTP filter, for failover).
    #[serde(default)]
    pub mode: Mode,
    /// The providers. Downstream mode uses the one named by `provider` (default the first).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub providers: Vec<P>,
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

/// The configuration as written.
pub type RawConfig = Config<RawProviderConfig>;

impl PluginConfig for Config {
    type Raw = RawConfig;

    fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
        if raw.providers.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "at least one provider is required",
            ));
        }
        let providers = raw
            .providers
            .into_iter()
            .enumerate()
            .map(|(i, p)| ProviderConfig::compile(p, &format!("providers[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, p) in providers.iter().enumerate() {
            if providers[i + 1..].iter().any(|q| q.id == p.id) {
                return Err(ConfigError::new(
                    format!("providers[{i}].id"),
                    format!("duplicate provider id `{}`", p.id),
                ));
            }
        }
        if let Some(id) = &raw.provider {
            if !providers.iter().any(|p| &p.id == id) {
                return Err(ConfigError::new(
                    "provider",
                    format!("no provider has id `{id}`"),
                ));
            }
        }
        for (i, p) in providers.iter().enumerate() {
            if p.provider() == Provider::Bedrock && p.api_keys.is_empty() && !raw.hold_headers {
                return Err(ConfigError::new(
                    format!("providers[{i}].bedrock_access_key_id"),
                    "SigV4 signs the body, so it needs `hold_headers: true` (and a gateway that holds headers while delivering the body); or use a Bedrock API key in `api_keys`",
                ));
            }
            if raw.mode == Mode::Upstream && p.endpoint.as_deref().unwrap_or("").is_empty() {
                return Err(ConfigError::new(
                    format!("providers[{i}].endpoint"),
                    "upstream mode needs each provider's endpoint address (host:port)",
                ));
            }
        }
        if raw.max_request_body_bytes == 0 {
            return Err(ConfigError::new(
                "max_request_body_bytes",
                "must be greater than 0",
            ));
        }
        if raw.max_event_bytes < 1024 {
            return Err(ConfigError::new("max_event_bytes", "must be at least 1024"));
        }
        Ok(Config {
            providers,
            mode: raw.mode,
            provider: raw.provider,
            key_selection: raw.key_selection,
            consumer_header: raw.consumer_header,
            allowed_models_header: raw.allowed_models_header,
            key_cooldown_secs: raw.key_cooldown_secs,
            cooldown_statuses: raw.cooldown_statuses,
            cluster_header: raw.cluster_header,
            max_request_body_bytes: raw.max_request_body_bytes,
            max_response_body_bytes: raw.max_response_body_bytes,
            max_event_bytes: raw.max_event_bytes,
            report_model: raw.report_model,
            response_headers: raw.response_headers,
            usage_property: raw.usage_property,
            hold_headers: raw.hold_headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Protocol as Wire;

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
    fn api_and_type_errors_list_the_accepted_values_without_echoing_the_value() {
        let c = parse(r#"{"providers":[{"type":"openai","api":"chat_completions"}]}"#).unwrap();
        assert_eq!(c.providers[0].wire(), Wire::ChatCompletions);
        let c = parse(r#"{"providers":[{"type":"openai","api":"responses"}]}"#).unwrap();
        assert_eq!(c.providers[0].wire(), Wire::Responses);
        let e = parse(r#"{"providers":[{"type":"anthropic","api":"responses"}]}"#).unwrap_err();
        assert_eq!(e.path(), "providers[0].api");
        let secret = "sk-this-is-a-secret-key-put-in-the-wrong-field";
        let e = parse(&format!(
            r#"{{"providers":[{{"type":"openai","api":"{secret}"}}]}}"#
        ))
        .unwrap_err();
        assert_eq!(e.path(), "providers[0].api");
        assert!(
            e.reason().contains("`chat`") && e.reason().contains("`responses`"),
            "{e}"
        );
        assert!(!e.to_string().contains(secret), "{e}");
        let e = parse(&format!(r#"{{"providers":[{{"type":"{secret}"}}]}}"#)).unwrap_err();
        assert_eq!(e.path(), "providers[0].type");
        assert!(e.reason().contains("openai, azure, anthropic"), "{e}");
        assert!(!e.to_string().contains(secret), "{e}");
    }

    #[test]
    fn debug_output_never_shows_credentials() {
        let c = parse(
            r#"{"hold_headers":true,"providers":[{"type":"bedrock","bedrock_region":"us-east-1","api_keys":["key-one-secret"],"bedrock_access_key_id":"AKIDSECRET","bedrock_secret_access_key":"very-secret"}]}"#,
        )
        .unwrap();
        let shown = format!("{c:?}");
        for secret in ["key-one-secret", "AKIDSECRET", "very-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(c.providers[0].signs_sigv4(true));
        assert!(!c.providers[0].signs_sigv4(false));
        assert_eq!(
            c.providers[0].redact_secrets(b"x key-one-secret very-secret".to_vec()),
            b"x [REDACTED] [REDACTED]".to_vec()
        );
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
