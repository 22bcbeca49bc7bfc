//! The checks behind [`AiGuard`]'s phase handlers: the complete request body (keywords,
//! patterns, the moderation call-out and its verdict), a complete response body, and the
//! refusals they lead to.

use super::*;

impl AiGuard {
    /// Checks the complete request body.
    pub(crate) fn check_request(
        &mut self,
        ctx: &mut Ctx<Self>,
        guard: &Guard,
        json_type: bool,
        body: Vec<u8>,
    ) -> Flow {
        self.request = RequestState::Skip;
        let Some(sel) = guard.request.as_ref() else {
            return Flow::Continue;
        };
        let json = json_type || looks_like_json(&body);
        if !json && !sel.raw {
            return Flow::Continue;
        }
        if json {
            // Parsers disagree on repeated keys (which `role`, which `content`): what cannot
            // be read one way only is not checked one way either.
            // Other syntax errors get the scanner's own message below.
            if let Some(p) = aigw::json::ambiguity(&body) {
                return self.unparsable_request(ctx, guard, &p.to_string());
            }
        }
        let shape = api_shape(ctx.protocol(), json);
        let mut vault = guard.has_restore.then(|| guard.new_vault());
        let outcome = scope::redact_body(
            &guard.engine,
            &body,
            json,
            sel,
            vault.as_mut(),
            &mut self.request_hits,
        );
        let mut rewritten = None;
        match outcome {
            Ok(BodyOutcome::Unchanged) => {}
            Ok(BodyOutcome::Rewritten(new)) => {
                if let Err(e) = ctx.replace_request_body(new.as_bytes()) {
                    // Never let unmasked data through.
                    aigw::error!("cannot rewrite the request body: {e}");
                    let _ = ctx.send_error(&ErrorReply::new(
                        500,
                        "ai-guard: cannot rewrite the request body",
                    ));
                    return Flow::Pause;
                }
                if json && guard.log_max_bytes > 0 {
                    // Loggers earlier in the chain saw the unmasked body.
                    match published::question(new.as_bytes(), guard.log_max_bytes) {
                        Some(q) => publish(ctx, contract::GUARD_QUESTION_PROPERTY, &q.record(true)),
                        None => withhold_question(ctx, guard, Withheld::Unchecked),
                    }
                }
                rewritten = Some(new);
            }
            Ok(BodyOutcome::Blocked { rule }) => {
                withhold_question(ctx, guard, Withheld::Blocked);
                let stream = shape.is_some() && wants_stream(&body);
                self.block_request(ctx, guard, shape, stream, &rule);
                return Flow::Pause;
            }
            Err(e) => {
                let reason = match e {
                    ScopeError::NotUtf8 => "the request body is not valid UTF-8".to_string(),
                    ScopeError::InvalidJson(at) => {
                        format!("the request body is not valid JSON (error at byte {at})")
                    }
                    ScopeError::TooDeep => e.to_string(),
                };
                return self.unparsable_request(ctx, guard, &reason);
            }
        }
        self.vault = vault.filter(|v| !v.is_empty());
        if let Some(md) = &guard.moderation {
            // After the local rules: what is sent out is the masked text.
            let checked: &[u8] = rewritten.as_deref().map_or(&body, str::as_bytes);
            let stream = shape.is_some() && wants_stream(&body);
            return self.moderate_request(ctx, md, checked, json, sel, shape, stream);
        }
        Flow::Continue
    }

    /// Asks the moderation service about the request's selected text (or
    /// reuses a cached verdict). `Pause` while the call-out runs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn moderate_request(
        &mut self,
        ctx: &mut Ctx<Self>,
        md: &Moderation,
        body: &[u8],
        json: bool,
        sel: &Selection,
        shape: Option<Protocol>,
        stream: bool,
    ) -> Flow {
        let Some(text) = moderation_text(body, json, sel) else {
            return Flow::Continue;
        };
        let key = md.cache_key(&text);
        let now = aigw::host::now_millis().unwrap_or(0);
        let cached = ctx.root().verdicts.borrow_mut().get(&key, now);
        if let Some(verdict) = cached {
            return self.apply_verdict(ctx, verdict, shape, stream, "cache");
        }
        let mut req = CallRequest::post(&md.authority, &md.path, md.request_body(&text));
        for (name, value) in md.headers() {
            req = req.header(name, &value);
        }
        let timeout = Duration::from_millis(md.timeout_ms);
        let sent = ctx.http_call(&md.cluster, req, timeout, |p: &mut AiGuard, ctx, result| {
            p.on_moderation(ctx, result);
        });
        match sent {
            Ok(()) => {
                self.pending = Some(PendingModeration { shape, stream, key });
                Flow::Pause
            }
            Err(e) => {
                aigw::warn!("moderation call-out not sent: {e}");
                self.moderation_failed(ctx, md.on_error, "dispatch")
            }
        }
    }

    /// The moderation call-out's answer: resume, block, or apply `on_error`.
    pub(crate) fn on_moderation(&mut self, ctx: &mut Ctx<Self>, result: CallResult) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let cfg = ctx.config_rc();
        let Some(md) = cfg.guard.moderation.as_ref() else {
            resume(ctx);
            return;
        };
        let verdict = match result {
            Ok(resp) => md.parse_verdict(&resp.body).ok_or("malformed"),
            Err(e) => {
                aigw::warn!("moderation call-out failed: {e}");
                Err(match e {
                    CallError::Timeout(_) => "timeout",
                    CallError::Unreachable(_) | CallError::Reset => "unreachable",
                    CallError::Status(_) => "status",
                    CallError::Host(_) => "host",
                })
            }
        };
        let flow = match verdict {
            Ok(v) => {
                let now = aigw::host::now_millis().unwrap_or(0);
                ctx.root()
                    .verdicts
                    .borrow_mut()
                    .put(p.key, v.clone(), now, md.cache);
                self.apply_verdict(ctx, v, p.shape, p.stream, "call")
            }
            Err(reason) => {
                if reason == "malformed" {
                    aigw::warn!("moderation answer is not a verdict");
                }
                self.moderation_failed(ctx, md.on_error, reason)
            }
        };
        if flow == Flow::Continue {
            resume(ctx);
        }
    }

    /// Passes or blocks on a verdict; `Pause` when a block reply was sent.
    pub(crate) fn apply_verdict(
        &mut self,
        ctx: &mut Ctx<Self>,
        verdict: moderation::Verdict,
        shape: Option<Protocol>,
        stream: bool,
        source: &str,
    ) -> Flow {
        match verdict {
            moderation::Verdict::Passed => {
                count(
                    MODERATION_METRIC,
                    &[("result", "passed"), ("source", source)],
                );
                Flow::Continue
            }
            moderation::Verdict::Flagged(categories) => {
                count(
                    MODERATION_METRIC,
                    &[("result", "flagged"), ("source", source)],
                );
                aigw::info!(
                    "moderation flagged the request (categories: {})",
                    categories_for_log(&categories)
                );
                let cfg = ctx.config_rc();
                self.block_request(ctx, &cfg.guard, shape, stream, "moderation");
                Flow::Pause
            }
        }
    }

    /// No verdict: forward (`allow`) or answer 503 (`block`).
    pub(crate) fn moderation_failed(
        &mut self,
        ctx: &mut Ctx<Self>,
        policy: OnError,
        reason: &str,
    ) -> Flow {
        count(
            MODERATION_METRIC,
            &[("result", "error"), ("source", "call")],
        );
        count(
            MODERATION_ERRORS_METRIC,
            &[("reason", reason), ("policy", policy.label())],
        );
        match policy {
            OnError::Allow => {
                aigw::warn!("no moderation verdict ({reason}); forwarded (on_error = allow)");
                Flow::Continue
            }
            OnError::Block => {
                aigw::warn!("no moderation verdict ({reason}); rejected (on_error = block)");
                let err = ErrorReply::new(503, "ai-guard: the moderation service is unavailable")
                    .code("moderation_unavailable");
                if let Err(e) = ctx.send_error(&err) {
                    aigw::error!("cannot send the error reply: {e}");
                    let _ = ctx.reset_stream();
                }
                Flow::Pause
            }
        }
    }

    /// A request body that cannot be checked: 400 or pass, as configured.
    pub(crate) fn unparsable_request(
        &mut self,
        ctx: &mut Ctx<Self>,
        guard: &Guard,
        reason: &str,
    ) -> Flow {
        withhold_question(ctx, guard, Withheld::Unchecked);
        match guard.on_parse_error {
            ParseErrorPolicy::Pass => {
                aigw::warn!("{reason}; forwarded unchecked (body.on_parse_error = pass)");
                count_unchecked("request", "parse_error");
                Flow::Continue
            }
            ParseErrorPolicy::Reject => {
                let err = ErrorReply::bad_request(format!("ai-guard: {reason}"), None)
                    .code("invalid_request_body");
                if let Err(e) = ctx.send_error(&err) {
                    aigw::warn!("cannot send the error reply: {e}");
                }
                Flow::Pause
            }
        }
    }

    /// Answers a blocked request.
    pub(crate) fn block_request(
        &mut self,
        ctx: &mut Ctx<Self>,
        guard: &Guard,
        shape: Option<Protocol>,
        stream: bool,
        rule: &str,
    ) {
        aigw::info!("blocked the request (rule {rule})");
        let reply = guard.block.render(shape, stream);
        let headers = [("content-type", reply.content_type.as_str())];
        if let Err(e) = ctx.send_response(u32::from(reply.status), &headers, reply.body.as_bytes())
        {
            aigw::error!("cannot send the block reply: {e}");
            let _ = ctx.reset_stream();
        }
    }

    /// Collects and checks a whole JSON response body.
    pub(crate) fn whole_response(
        &mut self,
        ctx: &mut Ctx<Self>,
        guard: &Guard,
        moderate: bool,
        chunk: BodyChunk,
    ) -> Flow {
        if chunk.size > guard.max_body_bytes {
            count_unchecked("response", "over_limit");
            match guard.over_limit {
                OverLimit::Pass => {
                    self.response = ResponseState::Pass;
                }
                OverLimit::Block => {
                    aigw::info!("blocked the answer (body.max_bytes)");
                    let shape = api_shape(ctx.protocol(), true);
                    let body = answer::blocked_answer(
                        shape,
                        &answer::AnswerMeta::default(),
                        &guard.block.message,
                        &guard.block.raw_message,
                    );
                    replace_response(ctx, &body);
                    self.response = ResponseState::Drop;
                }
            }
            return Flow::Continue;
        }
        if !chunk.end_of_stream {
            return Flow::Pause;
        }
        self.response = ResponseState::Skip;
        let body = match ctx.response_body(chunk) {
            Ok(b) => b,
            Err(e) => {
                aigw::warn!("cannot read the response body: {e}");
                return Flow::Continue;
            }
        };
        let shape = api_shape(ctx.protocol(), true);
        // Restored values reach loggers earlier in the chain: publish the
        // text before restore.
        let mut log = (self.vault.is_some() && guard.log_max_bytes > 0)
            .then(|| LogText::new(guard.log_max_bytes));
        let outcome = whole::guard_response_body(
            guard,
            &body,
            shape,
            moderate,
            self.vault.as_ref(),
            &mut self.response_hits,
            log.as_mut(),
        );
        if let (Some(l), false) = (&log, matches!(outcome, WholeOutcome::Blocked { .. })) {
            publish(ctx, contract::GUARD_ANSWER_PROPERTY, &l.record(true));
        }
        match outcome {
            WholeOutcome::Unchanged => {}
            WholeOutcome::Replace(new) => replace_response(ctx, &new),
            WholeOutcome::Blocked { rule, body } => {
                aigw::info!("blocked the answer (rule {rule})");
                replace_response(ctx, &body);
            }
        }
        Flow::Continue
    }

    pub(crate) fn finish_sse_hits(&mut self) {
        if let ResponseState::Sse(sse) = &self.response {
            self.response_hits.merge(&sse.report());
        }
    }
}
