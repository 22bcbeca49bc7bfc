//! What Higress needs to know about each plugin besides its module: category, title, one-line
//! description, and the phase and priority its README documents for the `WasmPlugin`
//! (`tests/tests/package.rs` checks these against the READMEs).

/// Higress metadata of one plugin.
#[derive(Debug, Clone, Copy)]
pub struct PluginMeta {
    /// Directory name under `plugins/` and the image name.
    pub name: &'static str,
    /// Higress plugin category: `auth`, `security`, `protocol`, `flow-control`,
    /// `flow-monitor` or `custom`.
    pub category: &'static str,
    /// Display name.
    pub title: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// `WasmPlugin` phase: `AUTHN`, `AUTHZ`, `STATS` or `UNSPECIFIED_PHASE`.
    pub phase: &'static str,
    /// `WasmPlugin` priority (higher runs first within a phase).
    pub priority: i64,
}

/// Every plugin that is packaged: the seven products. `hello` (the SDK example) and `noop`
/// (the benchmark baseline) are not products and get no image.
pub const PLUGINS: &[PluginMeta] = &[
    PluginMeta {
        name: "ai-auth",
        category: "auth",
        title: "AI Auth",
        description: "API-key authentication for LLM traffic: consumers, hashed credentials, per-consumer model allow and deny lists.",
        phase: "AUTHN",
        priority: 800,
    },
    PluginMeta {
        name: "ai-cache",
        category: "custom",
        title: "AI Cache",
        description: "Exact and semantic answer caching for LLM requests, streamed answers included.",
        phase: "AUTHZ",
        priority: 600,
    },
    PluginMeta {
        name: "ai-guard",
        category: "security",
        title: "AI Guard",
        description: "Content moderation and data masking for prompts and streamed answers.",
        phase: "AUTHN",
        priority: 700,
    },
    PluginMeta {
        name: "ai-load-balancer",
        category: "flow-control",
        title: "AI Load Balancer",
        description: "Picks the LLM backend by real load: round robin, least in-flight, latency EWMA, prefix affinity, vLLM metrics.",
        phase: "UNSPECIFIED_PHASE",
        priority: 200,
    },
    PluginMeta {
        name: "ai-proxy",
        category: "protocol",
        title: "AI Proxy",
        description: "One OpenAI-compatible API in front of many LLM providers: protocol mapping, model mapping, keys, failover.",
        phase: "UNSPECIFIED_PHASE",
        priority: 100,
    },
    PluginMeta {
        name: "ai-statistics",
        category: "flow-monitor",
        title: "AI Statistics",
        description: "Token, latency, status and cost metrics plus access-log attributes for LLM traffic.",
        phase: "STATS",
        priority: 900,
    },
    PluginMeta {
        name: "ai-token-ratelimit",
        category: "flow-control",
        title: "AI Token Rate Limit",
        description: "Token and request rate limits for LLM traffic, local or cluster-wide (Redis, Higress build).",
        phase: "AUTHZ",
        priority: 500,
    },
];

/// The metadata of `name`, if it is packaged.
pub fn find(name: &str) -> Option<&'static PluginMeta> {
    PLUGINS.iter().find(|p| p.name == name)
}

/// Higress's default icon for a category (the list in its Wasm Plugin Image Specification,
/// appendix "Default Icon for Each Plugin Category").
pub fn icon(category: &str) -> &'static str {
    match category {
        "auth" => "https://img.alicdn.com/imgextra/i4/O1CN01BPFGlT1pGZ2VDLgaH_!!6000000005333-2-tps-42-42.png",
        "security" => "https://img.alicdn.com/imgextra/i1/O1CN01jKT9vC1O059vNaq5u_!!6000000001642-2-tps-42-42.png",
        "protocol" => "https://img.alicdn.com/imgextra/i2/O1CN01xIywow1mVGuRUjbhe_!!6000000004959-2-tps-42-42.png",
        "flow-control" => "https://img.alicdn.com/imgextra/i3/O1CN01bAFa9k1t1gdQcVTH0_!!6000000005842-2-tps-42-42.png",
        "flow-monitor" => "https://img.alicdn.com/imgextra/i4/O1CN01aet3s61MoLOEEhRIo_!!6000000001481-2-tps-42-42.png",
        _ => "https://img.alicdn.com/imgextra/i1/O1CN018iKKih1iVx287RltL_!!6000000004419-2-tps-42-42.png",
    }
}
