//! Error status and type tables shared by decoders (upstream codes → status) and encoders
//! (status → each client dialect's error type).

/// The OpenAI error `type` conventionally used for a status.
pub fn openai_error_type(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_exceeded",
        503 => "service_unavailable",
        _ => "api_error",
    }
}

/// The Anthropic error `type` for a status.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 409 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The status for an Anthropic error `type` (`overloaded_error` is 503 for OpenAI clients);
/// 500 for unknown types.
pub fn anthropic_error_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 503,
        _ => 500,
    }
}

/// The status for a Bedrock exception type (header `x-amzn-errortype` or event-stream
/// `:exception-type`, compared case-insensitively, anything after `:` ignored); 500 when
/// unknown.
pub fn bedrock_exception_status(exception: &str) -> u16 {
    let name = exception.split(':').next().unwrap_or(exception);
    match name.to_ascii_lowercase().as_str() {
        "validationexception" => 400,
        "accessdeniedexception" | "unrecognizedclientexception" => 403,
        "resourcenotfoundexception" => 404,
        "modeltimeoutexception" => 408,
        "throttlingexception" | "servicequotaexceededexception" | "modelnotreadyexception" => 429,
        "serviceunavailableexception" => 503,
        "modelerrorexception" | "modelstreamerrorexception" => 502,
        _ => 500,
    }
}

/// The status for a DashScope error `code`; `None` for unknown codes.
pub fn dashscope_error_status(code: &str) -> Option<u16> {
    let status = match code {
        "InvalidApiKey" | "InvalidApiKeyError" => 401,
        c if c.starts_with("AccessDenied") || c == "Arrearage" => 403,
        "ModelNotFound" | "ModelNotExist" | "NotFound" => 404,
        c if c.starts_with("Throttling") || c == "LimitRequests" => 429,
        c if c.starts_with("InvalidParameter")
            || c == "DataInspectionFailed"
            || c == "data_inspection_failed"
            || c == "InvalidURL"
            || c == "BadRequest" =>
        {
            400
        }
        "RequestTimeOut" => 504,
        c if c.starts_with("InternalError") || c == "SystemError" => 500,
        "ServiceUnavailable" | "ModelUnavailable" => 503,
        _ => return None,
    };
    Some(status)
}

/// The status for a Gemini error `status` string (`RESOURCE_EXHAUSTED`, ...); `None` if
/// unknown.
pub fn gemini_error_status(status: &str) -> Option<u16> {
    Some(match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "RESOURCE_EXHAUSTED" => 429,
        "INTERNAL" => 500,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}
