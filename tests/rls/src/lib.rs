//! aigw-rls: a small Envoy global rate limit service for tests and demos.
//!
//! It answers `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` over plain-text
//! HTTP/2 (h2c, as Envoy's gRPC client speaks to a cluster without TLS), counts with Kuadrant's
//! Limitador library in Redis (so several service processes, and the gateways in front of
//! them, share the counters), and takes its limits from an ai-token-ratelimit plugin
//! configuration in rls mode, so the numbers are written once. Production deployments use
//! envoyproxy/ratelimit (see the plugin's README for its generated configuration).
//!
//! Every request is printed on standard output as one JSON line (domain, hits, descriptors,
//! codes), which is how tests observe what a gateway sent.

pub mod limits;
pub mod messages;
pub mod server;
pub mod service;
