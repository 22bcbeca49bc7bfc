//! What a test configures: plugins ([`PluginSpec`]), the gateway ([`SimOptions`]) and a
//! stream ([`StreamOptions`]).

use crate::abi::LogLevel;
use crate::module::{Loader, PluginModule};
use crate::shared::Clock;
use crate::stream_data::StreamProps;
use anyhow::Result;
use std::time::Duration;

/// What Envoy does with a stream when the plugin's VM has failed (trapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailPolicy {
    /// Every later request on that worker gets 503 (Envoy's default).
    #[default]
    Closed,
    /// The failed plugin is skipped.
    Open,
    /// A fresh VM is built for new requests after a backoff (Envoy >= 1.33).
    Reload,
}

/// One plugin of the chain: module, configuration and VM settings.
#[derive(Clone)]
pub struct PluginSpec {
    /// The plugin's name (`plugin_name` property, log prefix).
    pub name: String,
    /// The compiled module.
    pub module: PluginModule,
    /// The plugin configuration (buffer 7).
    pub config: Vec<u8>,
    /// The VM configuration (buffer 6).
    pub vm_config: Vec<u8>,
    /// Envoy's root_id.
    pub root_id: String,
    /// Envoy's vm_id: the namespace of shared data and queues.
    pub vm_id: String,
    /// Environment variables given to the VM.
    pub env: Vec<(String, String)>,
    /// What happens after a trap.
    pub fail_policy: FailPolicy,
    /// Envoy's `PluginConfig.allow_on_headers_stop_iteration` (Envoy 1.35+): a request-headers
    /// `StopIteration` holds the headers but still delivers the body, so the filter can change
    /// headers from its body callbacks. Without it (the default, as in Envoy) a headers pause
    /// stops everything until the filter resumes. Modules declaring Higress's ABI
    /// (`proxy_abi_version_0_2_100`) get this behaviour either way, as on Higress.
    pub allow_on_headers_stop_iteration: bool,
}

impl PluginSpec {
    /// A spec for a compiled module with an empty configuration.
    pub fn new(name: impl Into<String>, module: PluginModule) -> PluginSpec {
        PluginSpec {
            name: name.into(),
            module,
            config: Vec::new(),
            vm_config: Vec::new(),
            root_id: String::new(),
            vm_id: String::new(),
            env: Vec::new(),
            fail_policy: FailPolicy::Closed,
            allow_on_headers_stop_iteration: false,
        }
    }

    /// Loads a module file with a process-wide loader (compiled once per file content).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<PluginSpec> {
        let path = path.as_ref();
        let module = global_loader().load_file(path)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        Ok(PluginSpec::new(name, module))
    }

    /// Sets the plugin configuration from text (usually JSON).
    pub fn config_json(mut self, json: impl AsRef<str>) -> PluginSpec {
        self.config = json.as_ref().as_bytes().to_vec();
        self
    }

    /// Sets the plugin configuration bytes.
    pub fn config(mut self, bytes: impl Into<Vec<u8>>) -> PluginSpec {
        self.config = bytes.into();
        self
    }

    /// Sets the vm_id.
    pub fn vm_id(mut self, id: impl Into<String>) -> PluginSpec {
        self.vm_id = id.into();
        self
    }

    /// Sets the root_id.
    pub fn root_id(mut self, id: impl Into<String>) -> PluginSpec {
        self.root_id = id.into();
        self
    }

    /// Sets the plugin name.
    pub fn name(mut self, name: impl Into<String>) -> PluginSpec {
        self.name = name.into();
        self
    }

    /// Sets the failure policy.
    pub fn fail_policy(mut self, p: FailPolicy) -> PluginSpec {
        self.fail_policy = p;
        self
    }

    /// Sets Envoy's `allow_on_headers_stop_iteration` for this plugin (see the field).
    pub fn allow_on_headers_stop_iteration(mut self, on: bool) -> PluginSpec {
        self.allow_on_headers_stop_iteration = on;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> PluginSpec {
        self.env.push((k.into(), v.into()));
        self
    }
}

/// The loader shared by `PluginSpec::from_file` (one engine, one compile per module).
pub fn global_loader() -> &'static Loader {
    static LOADER: std::sync::OnceLock<Loader> = std::sync::OnceLock::new();
    LOADER.get_or_init(Loader::new)
}

/// Settings of a simulated gateway.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Worker threads (one VM per plugin per worker).
    pub workers: usize,
    /// Simulated clock (default) or the real one.
    pub clock: Clock,
    /// Per-stream buffer limit (Envoy's default connection buffer limit is 1 MiB).
    pub buffer_limit: usize,
    /// Lowest log level recorded.
    pub log_level: LogLevel,
    /// Backoff before FAIL_RELOAD builds a new VM.
    pub reload_backoff: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            workers: 1,
            clock: Clock::simulated(),
            buffer_limit: 1024 * 1024,
            log_level: LogLevel::Trace,
            reload_backoff: Duration::from_secs(1),
        }
    }
}

/// Stream options: which worker, and the properties the plugins read.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// The worker that serves the stream (default: round robin).
    pub worker: Option<usize>,
    /// Properties (route name, cluster name, addresses...).
    pub props: StreamProps,
}
