//! The rate limit service's messages (envoy/service/ratelimit/v3/rls.proto and
//! envoy/extensions/common/ratelimit/v3/ratelimit.proto), declared with `prost` derive: only
//! the fields this service reads or writes.

/// `RateLimitRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitRequest {
    /// The domain the limits belong to.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Every descriptor is limited on its own; any over its limit makes the answer OVER_LIMIT.
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    /// Hits this request adds (0 means 1).
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `RateLimitDescriptor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitDescriptor {
    /// The ordered entries.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
}

/// `RateLimitDescriptor.Entry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `RateLimitResponse.Code`: UNKNOWN.
pub const UNKNOWN: i32 = 0;
/// `RateLimitResponse.Code`: OK.
pub const OK: i32 = 1;
/// `RateLimitResponse.Code`: OVER_LIMIT.
pub const OVER_LIMIT: i32 = 2;

/// `RateLimitResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitResponse {
    /// OVER_LIMIT when any descriptor is.
    #[prost(int32, tag = "1")]
    pub overall_code: i32,
    /// One per descriptor, in request order.
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
}

/// `RateLimitResponse.DescriptorStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DescriptorStatus {
    /// The descriptor's code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The limit that applied, if any.
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    /// What is left in the current window.
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    /// Time until the window resets.
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<Duration>,
}

/// `RateLimitResponse.RateLimit`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimit {
    /// Hits per unit.
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    /// 1 second, 2 minute, 3 hour, 4 day.
    #[prost(int32, tag = "2")]
    pub unit: i32,
    /// The limit's name.
    #[prost(string, tag = "3")]
    pub name: String,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Duration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The `RateLimit.Unit` of a window length in seconds.
pub fn unit_of(secs: u64) -> i32 {
    match secs {
        1 => 1,
        60 => 2,
        3600 => 3,
        _ => 4,
    }
}
