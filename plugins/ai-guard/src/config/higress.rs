//! The Higress `ai-data-masking` fields, accepted at the top level of
//! [`GuardConfig`] and converted onto this plugin's own structure:
//! `deny_openai` / `deny_raw` switch the scope, `deny_jsonpath` adds JSON
//! paths, `deny_code` / `deny_message` / `deny_raw_message` /
//! `deny_content_type` fill the `block` section (a Higress block is a canned
//! answer), `deny_words` is one blocking keyword list and `replace_roles` are
//! regex mask rules. `system_deny` is accepted with a warning (no word
//! dictionary is bundled).

use serde::Deserialize;

use super::compile::{add_regex_rule, json_path, mask_style, word_error, RuleFlags};
use super::{err, BlockConfig, BlockStyle, ConfigError, DirectionScope, GuardConfig, MaskKind};
use crate::engine::{Action, EngineBuilder, MaskStyle, Rule, RuleKind};
use crate::scope::JsonPath;

/// Higress `replace_roles` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ReplaceRole {
    /// Regex, may contain `%{GROK}` names.
    pub regex: String,
    /// `replace` or `hash`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", extend("enum" = ["replace", "hash", null])))]
    #[serde(rename = "type")]
    pub kind: Option<MaskKind>,
    /// Restore in the answer.
    pub restore: bool,
    /// Replacement value.
    pub value: Option<String>,
}

/// Applies `deny_openai` and `deny_raw` to both directions.
pub(super) fn apply_switches(
    cfg: &GuardConfig,
    req: &mut DirectionScope,
    resp: &mut DirectionScope,
) {
    if let Some(v) = cfg.deny_openai {
        for d in [&mut *req, &mut *resp] {
            d.openai = v;
            d.anthropic = v;
        }
    }
    if let Some(v) = cfg.deny_raw {
        req.raw = v;
        resp.raw = v;
    }
}

/// The `deny_jsonpath` paths (scanned in both directions).
pub(super) fn json_paths(cfg: &GuardConfig) -> Result<Vec<JsonPath>, ConfigError> {
    let mut out = Vec::new();
    for (i, p) in cfg.deny_jsonpath.iter().flatten().enumerate() {
        out.push(json_path(format!("deny_jsonpath[{i}]"), p)?);
    }
    Ok(out)
}

/// Remarks about Higress fields accepted but not acted on.
pub(super) fn warnings(cfg: &GuardConfig) -> Vec<String> {
    let mut out = Vec::new();
    if cfg.system_deny == Some(true) {
        out.push(
            "system_deny: no built-in word dictionary is bundled; put your words in keywords.lists"
                .to_string(),
        );
    }
    out
}

/// The `block` section with the Higress fields as fallbacks: `deny_code` or
/// `deny_message` make the default style `answer`.
pub(super) fn block_section(cfg: &GuardConfig) -> BlockConfig {
    let b = &cfg.block;
    let higress_block = cfg.deny_code.is_some() || cfg.deny_message.is_some();
    BlockConfig {
        style: b.style.or(higress_block.then_some(BlockStyle::Answer)),
        status: b.status.or(cfg.deny_code),
        message: b.message.clone().or_else(|| cfg.deny_message.clone()),
        raw_message: b
            .raw_message
            .clone()
            .or_else(|| cfg.deny_raw_message.clone()),
        content_type: b
            .content_type
            .clone()
            .or_else(|| cfg.deny_content_type.clone()),
    }
}

/// Adds `deny_words` as one blocking keyword rule named `deny_words`.
pub(super) fn add_deny_words(cfg: &GuardConfig, eb: &mut EngineBuilder) -> Result<(), ConfigError> {
    let Some(words) = cfg.deny_words.as_ref().filter(|w| !w.is_empty()) else {
        return Ok(());
    };
    let rule = eb.add_rule(Rule {
        name: "deny_words".to_string(),
        kind: RuleKind::Keywords,
        action: Action::Block,
        mask: MaskStyle::Replace(None),
        restore: false,
        label: "DENY_WORDS".to_string(),
    });
    for (wi, w) in words.iter().enumerate() {
        if let Err(e) = eb.add_word(rule, w, false, false) {
            return err(format!("deny_words[{wi}]"), word_error(e));
        }
    }
    Ok(())
}

/// Adds the `replace_roles` mask rules (named `replace_roles[i]`).
pub(super) fn add_replace_roles(
    cfg: &GuardConfig,
    eb: &mut EngineBuilder,
    flags: &mut RuleFlags,
) -> Result<(), ConfigError> {
    for (ri, r) in cfg.replace_roles.iter().flatten().enumerate() {
        let f = format!("replace_roles[{ri}]");
        let mask = mask_style(r.kind, r.value.as_deref());
        flags.has_restore |= r.restore;
        flags.hashes |= mask == MaskStyle::Hash;
        if r.regex.trim().is_empty() {
            return err(format!("{f}.regex"), "empty regex");
        }
        let rule = Rule {
            name: f.clone(),
            kind: RuleKind::Regex,
            action: Action::Mask,
            mask,
            restore: r.restore,
            label: "MASKED".to_string(),
        };
        add_regex_rule(eb, &format!("{f}.regex"), &r.regex, rule)?;
    }
    Ok(())
}
