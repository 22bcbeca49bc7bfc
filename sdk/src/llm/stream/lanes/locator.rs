//! [`Locator`]: [`locate`] for the events of one stream, skipping the parse of a chat chunk
//! that repeats the previous one's bytes around a new content string.

use super::{locate, Field, Located, Part, RawMeta};
use crate::llm::stream::same_shape::SameShape;
use crate::llm::stream::Channel;
use crate::llm::Api;
use std::borrow::Cow;
use std::ops::Range;

/// Finds the text fields of a stream's events, one after the other: the same answers as
/// [`locate`] on each event.
///
/// After a chat chunk whose only text is one unescaped `content` string (and which ends no
/// lane), a following chunk with the same bytes around a plain string literal is answered
/// from that chunk's reading without parsing it (see `same_shape`).
#[derive(Debug, Default)]
pub struct Locator {
    shape: SameShape,
    /// The learnt chunk's content lane and where its metadata values are, as offsets from the
    /// data's start (before the literal) or from its end (after it).
    lane: Option<super::Lane>,
    meta: [Option<Offset>; 4],
    /// The allocation of a [`Located::fields`] handed back ([`Locator::recycle`]).
    spare: Vec<Field<'static>>,
}

#[derive(Debug, Clone, Copy)]
enum Offset {
    Start(usize, usize),
    End(usize, usize),
}

impl Locator {
    /// A locator for one stream.
    pub fn new() -> Locator {
        Locator::default()
    }

    /// The text fields of the stream's next event's `data` (as [`locate`] finds them).
    pub fn locate<'a>(&mut self, data: &'a [u8]) -> Result<Located<'a>, serde_json::Error> {
        if let (Some(lane), Some((span, text))) = (self.lane, self.shape.text(data)) {
            let mut found = Located {
                api: Some(Api::ChatCompletions),
                fields: recycle(std::mem::take(&mut self.spare)),
                ..Located::default()
            };
            let [id, model, created, object] = self.meta.map(|o| o.and_then(|o| at(data, o)));
            found.raw_meta = RawMeta {
                id,
                model,
                created,
                object,
            };
            if !text.is_empty() {
                found.fields.push(Field {
                    lane,
                    span,
                    text: Cow::Borrowed(text),
                });
            }
            return Ok(found);
        }
        let found = locate(data)?;
        self.learn(data, &found);
        Ok(found)
    }

    /// Takes back an answer of [`Locator::locate`] once read, so the next one reuses its
    /// allocation.
    pub fn recycle(&mut self, found: Located<'_>) {
        self.spare = recycle(found.fields);
    }

    /// Whether the next `data` would be answered without a parse (for tests).
    #[cfg(test)]
    pub(crate) fn shape_matches(&self, data: &[u8]) -> bool {
        self.lane.is_some() && self.shape.text(data).is_some()
    }

    /// Learns `data` when it is a plain content chunk; keeps what it knew otherwise (a finish
    /// or usage chunk does not make the next content chunk slow).
    fn learn(&mut self, data: &[u8], found: &Located<'_>) {
        let [field] = found.fields.as_slice() else {
            return;
        };
        let plain = found.api == Some(Api::ChatCompletions)
            && found.whole.is_empty()
            && found.ends.is_empty()
            && found.item_id.is_none()
            && found.opens.is_none()
            && field.lane.part == Part::Text(Channel::Content)
            && matches!(field.text, Cow::Borrowed(_))
            && !data
                .get(field.span.clone())
                .is_some_and(|l| l.contains(&b'\\'));
        if !plain {
            return;
        }
        let m = &found.raw_meta;
        let mut meta = [None; 4];
        for (slot, value) in meta.iter_mut().zip([m.id, m.model, m.created, m.object]) {
            let Some(value) = value else { continue };
            let Some(range) = range_in(data, value) else {
                return;
            };
            *slot = Some(if range.end <= field.span.start {
                Offset::Start(range.start, range.end)
            } else if range.start >= field.span.end {
                Offset::End(data.len() - range.start, data.len() - range.end)
            } else {
                return;
            });
        }
        self.shape.learn(data, field.span.clone());
        self.lane = Some(field.lane);
        self.meta = meta;
    }
}

/// Gives the allocation of fields read from one event to the fields of the next (same layout,
/// so the standard library reuses the buffer in place); it is empty either way.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut v: Vec<Field<'_>>) -> Vec<Field<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Where `part` (a slice of `data`) lies in `data`.
fn range_in(data: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= data.len()).then_some(start..end)
}

/// The bytes at a learnt offset in an event of the same shape.
fn at(data: &[u8], o: Offset) -> Option<&[u8]> {
    match o {
        Offset::Start(a, b) => data.get(a..b),
        Offset::End(a, b) => data.get(data.len().checked_sub(a)?..data.len().checked_sub(b)?),
    }
}
