//! The compile step: checks a [`GuardConfig`] (bounds, names, labels, regexes,
//! JSON paths) and builds the [`Guard`] the plugin runs with. Every error
//! names the field path as written.

use std::rc::Rc;

use super::grok::{expand_grok, grok_builtin};
use super::{
    err, higress, BlockSettings, BlockStyle, ConfigError, DirectionScope, Guard, GuardConfig,
    MaskKind, DEFAULT_BLOCK_MESSAGE,
};
use crate::engine::{Action, EngineBuilder, MaskStyle, Rule, RuleKind};
use crate::normalize::Folder;
use crate::patterns::Builtin;
use crate::scope::{Direction, JsonPath, Selection};

/// The reason of a rejected keyword.
pub(super) fn word_error(e: crate::keywords::WordError) -> String {
    match e {
        crate::keywords::WordError::Empty => "empty word".to_string(),
        crate::keywords::WordError::TooLong => {
            format!("longer than {} characters", crate::keywords::MAX_WORD_CHARS)
        }
    }
}

/// The mask style of a rule's `type` and `value`.
pub(super) fn mask_style(kind: Option<MaskKind>, value: Option<&str>) -> MaskStyle {
    match kind.unwrap_or_default() {
        MaskKind::Replace => MaskStyle::Replace(value.map(str::to_string)),
        MaskKind::Hash => MaskStyle::Hash,
    }
}

fn check_label(field: &str, label: &str) -> Result<(), ConfigError> {
    if label.is_empty()
        || label.len() > 32
        || !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return err(field, "use 1 to 32 characters among A-Z, 0-9 and _");
    }
    Ok(())
}

fn default_label(name: &str) -> String {
    let mut l: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if l.trim_matches('_').is_empty() {
        l = "MASKED".to_string();
    }
    l
}

/// A JSON path of field `field`.
pub(super) fn json_path(field: String, src: &str) -> Result<JsonPath, ConfigError> {
    JsonPath::parse(src).or_else(|e| err(field, format!("invalid JSON path: {e}")))
}

fn selection(
    field: &str,
    d: &DirectionScope,
    direction: Direction,
) -> Result<Option<Selection>, ConfigError> {
    if !d.enabled {
        return Ok(None);
    }
    let mut paths = Vec::new();
    for (i, p) in d.json_paths.iter().enumerate() {
        paths.push(json_path(format!("{field}.json_paths[{i}]"), p)?);
    }
    for (i, r) in d.roles.iter().enumerate() {
        if r.trim().is_empty() {
            return err(format!("{field}.roles[{i}]"), "empty role");
        }
    }
    Ok(Some(Selection {
        direction,
        openai: d.openai,
        anthropic: d.anthropic,
        roles: d.roles.clone(),
        paths,
        raw: d.raw,
    }))
}

/// The bounds of the numeric settings.
fn check_bounds(cfg: &GuardConfig) -> Result<(), ConfigError> {
    if cfg.normalize.max_separator_run > 8 {
        return err("normalize.max_separator_run", "must be at most 8");
    }
    if !(16..=4096).contains(&cfg.stream.max_match_len) {
        return err("stream.max_match_len", "must be between 16 and 4096");
    }
    if cfg.body.max_bytes == 0 || cfg.body.max_bytes > 256 << 20 {
        return err("body.max_bytes", "must be between 1 and 268435456");
    }
    if cfg.restore.max_entries == 0 || cfg.restore.max_entries > 100_000 {
        return err("restore.max_entries", "must be between 1 and 100000");
    }
    if cfg.restore.max_bytes < 64 || cfg.restore.max_bytes > 64 << 20 {
        return err("restore.max_bytes", "must be between 64 and 67108864");
    }
    if cfg.log.max_bytes > crate::published::MAX_MAX_BYTES {
        return err(
            "log.max_bytes",
            format!(
                "must be at most {} (0 turns publishing off)",
                crate::published::MAX_MAX_BYTES
            ),
        );
    }
    Ok(())
}

/// The block settings: the `block` section, with the Higress fields as
/// fallbacks.
fn block_settings(cfg: &GuardConfig) -> Result<BlockSettings, ConfigError> {
    let b = higress::block_section(cfg);
    let style = b.style.unwrap_or(BlockStyle::Error);
    let status = b.status.unwrap_or(match style {
        BlockStyle::Error => 400,
        BlockStyle::Answer => 200,
    });
    if !(200..=599).contains(&status) {
        return err(
            if cfg.block.status.is_some() {
                "block.status"
            } else {
                "deny_code"
            },
            "must be an HTTP status between 200 and 599",
        );
    }
    let message = b
        .message
        .unwrap_or_else(|| DEFAULT_BLOCK_MESSAGE.to_string());
    let raw_message = b
        .raw_message
        .unwrap_or_else(|| serde_json::json!({"errmsg": message}).to_string());
    let content_type = b
        .content_type
        .unwrap_or_else(|| "application/json".to_string());
    Ok(BlockSettings {
        style,
        status,
        message,
        raw_message,
        content_type,
    })
}

/// What the rules need besides the engine builder.
pub(super) struct RuleFlags {
    /// Some rule records restorable masks.
    pub has_restore: bool,
    /// Some rule masks with a hash.
    pub hashes: bool,
}

/// Adds the `keywords.lists` rules.
fn add_keyword_lists(
    cfg: &GuardConfig,
    eb: &mut EngineBuilder,
    flags: &mut RuleFlags,
) -> Result<(), ConfigError> {
    for (li, list) in cfg.keywords.lists.iter().enumerate() {
        let f = format!("keywords.lists[{li}]");
        if list.name.trim().is_empty() {
            return err(format!("{f}.name"), "a list needs a name");
        }
        let action = list.action.unwrap_or(Action::Block);
        let mask = mask_style(list.kind, list.value.as_deref());
        let label = match &list.label {
            Some(l) => {
                check_label(&format!("{f}.label"), l)?;
                l.clone()
            }
            None => default_label(&list.name),
        };
        if list.words.is_empty()
            && list
                .words_text
                .as_deref()
                .is_none_or(|t| t.trim().is_empty())
        {
            return err(format!("{f}.words"), "the list has no words");
        }
        flags.has_restore |= action == Action::Mask && list.restore;
        flags.hashes |= mask == MaskStyle::Hash;
        let rule = eb.add_rule(Rule {
            name: list.name.clone(),
            kind: RuleKind::Keywords,
            action,
            mask,
            restore: list.restore,
            label,
        });
        for (wi, w) in list.words.iter().enumerate() {
            if let Err(e) = eb.add_word(rule, w, list.whole_word, list.ignore_separators) {
                return err(format!("{f}.words[{wi}]"), word_error(e));
            }
        }
        if let Some(t) = &list.words_text {
            for (ln, line) in t.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                if let Err(e) = eb.add_word(rule, line, list.whole_word, list.ignore_separators) {
                    return err(format!("{f}.words_text line {}", ln + 1), word_error(e));
                }
            }
        }
    }
    Ok(())
}

/// Adds the `patterns` rules.
fn add_patterns(
    cfg: &GuardConfig,
    eb: &mut EngineBuilder,
    flags: &mut RuleFlags,
) -> Result<(), ConfigError> {
    for (pi, p) in cfg.patterns.iter().enumerate() {
        let f = format!("patterns[{pi}]");
        let action = p.action.unwrap_or(Action::Mask);
        let mask = mask_style(p.kind, p.value.as_deref());
        if let Some(l) = &p.label {
            check_label(&format!("{f}.label"), l)?;
        }
        flags.has_restore |= action == Action::Mask && p.restore;
        flags.hashes |= mask == MaskStyle::Hash;
        match (&p.builtin, &p.regex) {
            (Some(name), None) => {
                let Some(list) = Builtin::expand(name) else {
                    let known: Vec<&str> = crate::patterns::ALL_BUILTINS
                        .iter()
                        .map(|b| b.name())
                        .collect();
                    return err(
                        format!("{f}.builtin"),
                        format!("unknown built-in pattern \"{name}\" (known: {}, or the groups pii, secrets, all)", known.join(", ")),
                    );
                };
                let group = list.len() > 1;
                for b in list {
                    let name = match (&p.name, group) {
                        (Some(n), false) => n.clone(),
                        _ => b.name().to_string(),
                    };
                    let rule = eb.add_rule(Rule {
                        name,
                        kind: RuleKind::Builtin(b),
                        action,
                        mask: mask.clone(),
                        restore: p.restore,
                        label: p.label.clone().unwrap_or_else(|| b.label().to_string()),
                    });
                    eb.add_builtin(rule, b)
                        .or_else(|e| err(format!("{f}.builtin"), e))?;
                }
            }
            (None, Some(src)) => {
                let name = p.name.clone().unwrap_or_else(|| f.clone());
                let label = p.label.clone().unwrap_or_else(|| match &p.name {
                    Some(n) => default_label(n),
                    None => "MASKED".to_string(),
                });
                let rule = Rule {
                    name,
                    kind: RuleKind::Regex,
                    action,
                    mask,
                    restore: p.restore,
                    label,
                };
                add_regex_rule(eb, &format!("{f}.regex"), src, rule)?;
            }
            _ => return err(f, "set exactly one of builtin and regex"),
        }
    }
    Ok(())
}

/// Checks `cfg` and builds the runtime form.
pub fn compile(cfg: &GuardConfig) -> Result<Guard, ConfigError> {
    let mut warnings = Vec::new();
    check_bounds(cfg)?;

    // Scope, with Higress switches applied on top.
    let mut req = cfg.scope.request.clone();
    let mut resp = cfg.scope.response.clone();
    higress::apply_switches(cfg, &mut req, &mut resp);
    let mut request = selection("scope.request", &req, Direction::Request)?;
    let mut response = selection("scope.response", &resp, Direction::Response)?;
    for jp in higress::json_paths(cfg)? {
        for sel in [&mut request, &mut response].into_iter().flatten() {
            sel.paths.push(jp.clone());
        }
    }
    warnings.extend(higress::warnings(cfg));
    let block = block_settings(cfg)?;

    // Rules, in this order: keyword lists, Higress deny_words, patterns,
    // Higress replace_roles.
    let n = &cfg.normalize;
    let folder = Folder::new(&n.separators, n.max_separator_run);
    let mut eb = EngineBuilder::new(
        folder,
        cfg.mask.hash_salt.as_bytes(),
        cfg.stream.max_match_len,
    );
    let mut flags = RuleFlags {
        has_restore: false,
        hashes: false,
    };
    add_keyword_lists(cfg, &mut eb, &mut flags)?;
    higress::add_deny_words(cfg, &mut eb)?;
    add_patterns(cfg, &mut eb, &mut flags)?;
    higress::add_replace_roles(cfg, &mut eb, &mut flags)?;
    if flags.hashes && cfg.mask.hash_salt.is_empty() {
        warnings.push("mask.hash_salt is empty: hash masks of low-entropy values can be reversed by brute force".to_string());
    }

    let moderation = match &cfg.moderation {
        Some(m) => crate::moderation::Moderation::from_config(m)?,
        None => None,
    };
    if moderation.is_some() && request.is_none() {
        warnings.push(
            "moderation: scope.request is disabled, so no text is sent for moderation".to_string(),
        );
    }

    let engine = eb.build().map_err(|e| {
        ConfigError::new(
            "keywords",
            format!("cannot build the keyword automaton: {e}"),
        )
    })?;
    Ok(Guard {
        engine: Rc::new(engine),
        request,
        response,
        stream: cfg.stream.enabled,
        block,
        max_body_bytes: cfg.body.max_bytes,
        over_limit: cfg.body.over_limit,
        on_parse_error: cfg.body.on_parse_error,
        restore: (cfg.restore.max_entries, cfg.restore.max_bytes),
        has_restore: flags.has_restore,
        moderation,
        log_max_bytes: cfg.log.max_bytes,
        warnings,
    })
}

/// Adds a regex rule (`rule.kind` is set here): a whole-regex grok name that
/// maps to a validated built-in becomes that built-in, other grok names are
/// expanded.
pub(super) fn add_regex_rule(
    eb: &mut EngineBuilder,
    field: &str,
    src: &str,
    mut rule: Rule,
) -> Result<(), ConfigError> {
    if let Some(b) = grok_builtin(src) {
        if rule.label == "MASKED" {
            rule.label = b.label().to_string();
        }
        rule.kind = RuleKind::Builtin(b);
        let id = eb.add_rule(rule);
        return eb.add_builtin(id, b).or_else(|e| err(field, e));
    }
    let expanded = expand_grok(field, src)?;
    rule.kind = RuleKind::Regex;
    let id = eb.add_rule(rule);
    eb.add_regex(id, &expanded).or_else(|e| err(field, e))
}
