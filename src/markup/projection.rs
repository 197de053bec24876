//! Inline markup put back onto a translation.
//!
//! A block of a document (an HTML paragraph, a Markdown list item, the cues of a subtitle
//! sentence) is translated as plain text, one sentence at a time. Its inline elements (links,
//! emphasis, line breaks, cues) are a tree of byte ranges over that plain text. After
//! translation each element is given the English words aligned with the French words it
//! covered, as bergamot-translator does:
//!
//! - **Words** are runs of non-whitespace characters; an element always covers whole words.
//! - **Votes**: each English word takes the French word its tokens are aligned with (the
//!   model's hard alignment; the word most of its tokens point into). Without an alignment,
//!   or for a word none of whose tokens is aligned, it takes the French word at the same
//!   relative position in the sentence (proportional positions by length).
//! - **Blocks**: the children of an element get disjoint, contiguous runs of the English words
//!   of their parent, chosen by dynamic programming to agree with as many votes as possible,
//!   each child at least one word while there are words enough. So no element is duplicated
//!   or lost, none is left empty unless the translation has fewer words than elements, and
//!   the result always nests. Siblings may swap places when the translation reorders them
//!   (or keep their source order, for subtitle cues).
//! - **Void elements** (a line break, an image, inline code kept as it is) go right after the
//!   English word aligned with the French word before them, inside their parent and outside
//!   their siblings.
//!
//! Everything here is pure data in, data out: the formats give the tree and render the
//! result with their own markup and escaping.

use std::ops::Range;

use crate::translator::Alignment;

/// An inline element of a source text, with whatever its format needs to write it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element<T> {
    /// The bytes of the source text it covers; for a void element, an empty range at its
    /// position.
    pub range: Range<usize>,
    /// A void element covers no words: it is placed, not stretched.
    pub void: bool,
    /// Elements inside it, in source order, disjoint.
    pub children: Vec<Element<T>>,
    /// The format's own data (its start and end tags, say).
    pub data: T,
}

/// Whether siblings may change places in the translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Where the translation puts them (links, emphasis).
    Target,
    /// Always in source order (subtitle cues).
    Source,
}

/// One sentence of a block and its translation.
#[derive(Debug, Clone)]
pub struct SentencePair<'a> {
    /// The sentence's bytes in the block's source text.
    pub source: Range<usize>,
    /// Its translation.
    pub target: &'a str,
    /// The model's alignment of the two, if asked for.
    pub alignment: Option<&'a Alignment>,
}

/// An element placed in the translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed<'e, T> {
    /// The element.
    pub element: &'e Element<T>,
    /// The bytes of the target text it covers (whole words); empty for a void element, or
    /// for an element the translation had no word left for, at its position.
    pub range: Range<usize>,
    /// Its children, placed, in target order.
    pub children: Vec<Placed<'e, T>>,
}

/// A block's translation with its elements placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection<'e, T> {
    /// The sentences' translations joined by single spaces.
    pub target: String,
    /// The top-level elements, placed, in target order.
    pub placed: Vec<Placed<'e, T>>,
}

/// Beyond this many (words × elements) at one level the exact search is replaced by a
/// monotone approximation, so that a pathological block cannot take quadratic memory.
const MAX_SEARCH_CELLS: usize = 1_000_000;

/// Places `elements` (a tree over `source`) onto the translation of the block's sentences.
pub fn project<'e, T>(
    source: &str,
    sentences: &[SentencePair<'_>],
    elements: &'e [Element<T>],
    order: Order,
) -> Projection<'e, T> {
    let source_words = words(source);
    let mut target = String::new();
    let mut target_words: Vec<Range<usize>> = Vec::new();
    let mut votes: Vec<usize> = Vec::new();
    for pair in sentences {
        let text = pair.target.trim();
        if text.is_empty() {
            continue;
        }
        if !target.is_empty() {
            target.push(' ');
        }
        let offset = target.len();
        // `trim` keeps the alignment's offsets valid once shifted by what it cut.
        let cut = text.as_ptr() as usize - pair.target.as_ptr() as usize;
        target.push_str(text);
        let local = words(text);
        let sentence_votes = vote(source, &source_words, pair, &local, cut);
        for (range, vote) in local.into_iter().zip(sentence_votes) {
            target_words.push(range.start + offset..range.end + offset);
            votes.push(vote);
        }
    }
    let context = Context {
        source,
        target: &target,
        source_words: &source_words,
        target_words: &target_words,
        votes: &votes,
        target_len: target.len(),
    };
    let all = 0..target_words.len();
    let placed = context.place_children(elements, all, order);
    Projection { target, placed }
}

/// Byte ranges of the runs of non-whitespace characters of `text`.
pub fn words(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// The first word of `words` overlapping `range` (or, for an empty range, the word at or
/// after it).
fn word_at(words: &[Range<usize>], range: &Range<usize>) -> Option<usize> {
    let i = words.partition_point(|w| w.end <= range.start);
    let word = words.get(i)?;
    let overlaps = if range.is_empty() {
        true
    } else {
        word.start < range.end
    };
    overlaps.then_some(i)
}

/// The source word each target word of one sentence comes from (indices into
/// `source_words`). `target_words` are ranges in the trimmed translation, which starts `cut`
/// bytes into `pair.target`.
fn vote(
    source: &str,
    source_words: &[Range<usize>],
    pair: &SentencePair<'_>,
    target_words: &[Range<usize>],
    cut: usize,
) -> Vec<usize> {
    let sentence = pair.source.start.min(source.len())..pair.source.end.min(source.len());
    // The source words of this sentence.
    let first = source_words.partition_point(|w| w.end <= sentence.start);
    let last = source_words.partition_point(|w| w.start < sentence.end);
    let own = first..last.max(first);
    let mut counts: Vec<Vec<(usize, usize)>> = vec![Vec::new(); target_words.len()];
    if let Some(alignment) = pair.alignment {
        for &(s, t) in &alignment.pairs {
            let (Some(s_range), Some(t_range)) = (alignment.source.get(s), alignment.target.get(t))
            else {
                continue;
            };
            let shifted_s = s_range.start + sentence.start..s_range.end + sentence.start;
            let t_local = t_range.start.saturating_sub(cut)..t_range.end.saturating_sub(cut);
            if t_range.start < cut && t_range.end <= cut {
                continue;
            }
            let (Some(tw), Some(sw)) = (
                word_at(target_words, &t_local),
                word_at(&source_words[own.clone()], &shifted_s),
            ) else {
                continue;
            };
            let sw = sw + own.start;
            match counts[tw].iter_mut().find(|(w, _)| *w == sw) {
                Some((_, n)) => *n += 1,
                None => counts[tw].push((sw, 1)),
            }
        }
    }
    let total_target: usize = target_words.last().map_or(0, |w| w.end);
    counts
        .iter()
        .zip(target_words)
        .map(|(candidates, word)| {
            // Most votes; the first aligned on a tie.
            let best = candidates
                .iter()
                .fold(None::<(usize, usize)>, |best, &(w, n)| match best {
                    Some((_, m)) if m >= n => best,
                    _ => Some((w, n)),
                });
            match best {
                Some((w, _)) => w,
                None => proportional(source_words, &own, &sentence, word, total_target),
            }
        })
        .collect()
}

/// The source word at the same relative position in the sentence as `word` in its
/// translation of `target_len` bytes.
fn proportional(
    source_words: &[Range<usize>],
    own: &Range<usize>,
    sentence: &Range<usize>,
    word: &Range<usize>,
    target_len: usize,
) -> usize {
    if own.is_empty() {
        // A sentence without words of its own: the nearest word before it, or the first.
        return own
            .start
            .saturating_sub(1)
            .min(source_words.len().saturating_sub(1));
    }
    let centre = (word.start + word.end) as f64 / 2.0;
    let fraction = if target_len == 0 {
        0.0
    } else {
        centre / target_len as f64
    };
    let position = sentence.start as f64 + fraction * sentence.len() as f64;
    let words = &source_words[own.clone()];
    let i = words.partition_point(|w| (w.end as f64) <= position);
    own.start + i.min(words.len() - 1)
}

struct Context<'a> {
    source: &'a str,
    target: &'a str,
    source_words: &'a [Range<usize>],
    target_words: &'a [Range<usize>],
    votes: &'a [usize],
    target_len: usize,
}

impl Context<'_> {
    /// Places `elements` (siblings) inside the target words `span` of their parent.
    fn place_children<'e, T>(
        &self,
        elements: &'e [Element<T>],
        span: Range<usize>,
        order: Order,
    ) -> Vec<Placed<'e, T>> {
        let paired: Vec<&'e Element<T>> = elements.iter().filter(|e| !e.void).collect();
        // Which child each source word belongs to (the one covering most of it).
        let child_of_word = |w: usize| -> Option<usize> {
            let word = &self.source_words[w];
            let mut best: Option<(usize, usize)> = None;
            for (c, element) in paired.iter().enumerate() {
                let overlap = element
                    .range
                    .end
                    .min(word.end)
                    .saturating_sub(element.range.start.max(word.start));
                if overlap > 0 && best.is_none_or(|(_, b)| overlap > b) {
                    best = Some((c, overlap));
                }
            }
            best.map(|(c, _)| c)
        };
        let labels: Vec<Option<usize>> = span
            .clone()
            .map(|t| self.votes.get(t).and_then(|&w| child_of_word(w)))
            .collect();
        let order_of_children = self.child_order(&paired, &labels, &span, order);
        // Labels renumbered in that order: 0 is the parent, j + 1 the j-th child placed.
        let mut rank = vec![0; paired.len()];
        for (position, &c) in order_of_children.iter().enumerate() {
            rank[c] = position + 1;
        }
        let ranked: Vec<usize> = labels.iter().map(|l| l.map_or(0, |c| rank[c])).collect();
        let blocks = if ranked.len() * (paired.len() + 1) <= MAX_SEARCH_CELLS {
            best_blocks(&ranked, paired.len())
        } else {
            monotone_blocks(&ranked, paired.len())
        };
        let mut placed: Vec<Placed<'e, T>> = Vec::with_capacity(elements.len());
        for (position, &c) in order_of_children.iter().enumerate() {
            let local = &blocks[position];
            let words = span.start + local.start..span.start + local.end;
            let element = paired[c];
            let range = self.trim_punctuation(element, self.bytes(&words, &span));
            placed.push(Placed {
                element,
                range,
                children: self.place_children(&element.children, words, order_within(order)),
            });
        }
        // Void elements, after the word aligned with the source word before them, out of
        // their siblings' blocks.
        let taken: Vec<Range<usize>> = blocks
            .iter()
            .map(|b| span.start + b.start..span.start + b.end)
            .collect();
        for element in elements.iter().filter(|e| e.void) {
            let boundary = self.void_boundary(element.range.start, &span, &taken);
            // After a space in the source, the element goes after the space in the
            // translation too: before the next word, when there is one in its parent.
            let spaced = self
                .source
                .get(..element.range.start)
                .is_some_and(|before| before.ends_with(char::is_whitespace));
            let mut at = if spaced && boundary > span.start && boundary < span.end {
                self.target_words[boundary].start
            } else {
                self.bytes(&(boundary..boundary), &span).start
            };
            // Inside a word, before its punctuation (`note[^1].`): before the translation's
            // punctuation too.
            let inside = self
                .source_words
                .iter()
                .find(|w| w.start < element.range.start && element.range.start < w.end);
            if let Some(word) = inside {
                let tail = &self.source[element.range.start..word.end];
                if !spaced
                    && boundary > span.start
                    && tail.chars().all(|c| !c.is_alphanumeric())
                    && self.target_words[boundary - 1].end == at
                {
                    let target_word = &self.target[self.target_words[boundary - 1].clone()];
                    let kept = target_word.trim_end_matches(|c: char| !c.is_alphanumeric());
                    if !kept.is_empty() {
                        at = self.target_words[boundary - 1].start + kept.len();
                    }
                }
            }
            placed.push(Placed {
                element,
                range: at..at,
                children: Vec::new(),
            });
        }
        // Target order; at one position, empty and void elements before a word run.
        placed.sort_by_key(|p| (p.range.start, !p.range.is_empty()));
        placed
    }

    /// An element that stops short of its word's punctuation in the source (`<i>oui</i>.`,
    /// `(<i>voir</i>)`) leaves the translation's punctuation out too.
    fn trim_punctuation<T>(&self, element: &Element<T>, mut range: Range<usize>) -> Range<usize> {
        let punctuation = |text: &str| {
            !text.is_empty()
                && text
                    .chars()
                    .all(|c| !c.is_alphanumeric() && !c.is_whitespace())
        };
        let Some(target) = self.target.get(range.clone()) else {
            return range;
        };
        let (start, end) = (element.range.start, element.range.end);
        let inside = |at: usize| {
            self.source_words
                .iter()
                .find(|w| w.start < at && at < w.end)
        };
        if let Some(word) = inside(end) {
            if self.source.get(end..word.end).is_some_and(punctuation) {
                let kept =
                    target.trim_end_matches(|c: char| !c.is_alphanumeric() && !c.is_whitespace());
                if !kept.is_empty() {
                    range.end = range.start + kept.len();
                }
            }
        }
        if let Some(word) = inside(start) {
            if self.source.get(word.start..start).is_some_and(punctuation) {
                let text = &self.target[range.clone()];
                let kept =
                    text.trim_start_matches(|c: char| !c.is_alphanumeric() && !c.is_whitespace());
                if !kept.is_empty() {
                    range.start = range.end - kept.len();
                }
            }
        }
        range
    }

    /// The order the paired children take in the translation.
    fn child_order<T>(
        &self,
        paired: &[&Element<T>],
        labels: &[Option<usize>],
        span: &Range<usize>,
        order: Order,
    ) -> Vec<usize> {
        let mut indices: Vec<usize> = (0..paired.len()).collect();
        if order == Order::Source {
            return indices;
        }
        let source_len = self.source_words.last().map_or(1, |w| w.end.max(1)) as f64;
        let centres: Vec<f64> = (0..paired.len())
            .map(|c| {
                let mine: Vec<usize> = labels
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| **l == Some(c))
                    .map(|(i, _)| i)
                    .collect();
                if mine.is_empty() {
                    // No word voted for it: where it was in the source.
                    let fraction = paired[c].range.start as f64 / source_len;
                    fraction * span.len() as f64
                } else {
                    mine.iter().sum::<usize>() as f64 / mine.len() as f64
                }
            })
            .collect();
        indices.sort_by(|&a, &b| centres[a].total_cmp(&centres[b]).then(a.cmp(&b)));
        indices
    }

    /// The word boundary (index of the word it goes before) of a void element at `position`
    /// in the source, inside `span`, outside the `taken` blocks of its siblings.
    fn void_boundary(&self, position: usize, span: &Range<usize>, taken: &[Range<usize>]) -> usize {
        // The source word just before the element, if any; a word the element sits inside
        // (`note[^1].`) counts as before it.
        let mut before = self.source_words.partition_point(|w| w.end <= position);
        if self
            .source_words
            .get(before)
            .is_some_and(|w| w.start < position && position < w.end)
        {
            before += 1;
        }
        let boundary = if before == 0 {
            span.start
        } else {
            let anchor = before - 1;
            let in_span = || span.clone().filter(|&t| t < self.votes.len());
            match in_span().rev().find(|&t| self.votes[t] == anchor) {
                Some(t) => t + 1,
                None => in_span()
                    .rev()
                    .find(|&t| self.votes[t] < anchor)
                    .map_or(span.start, |t| t + 1),
            }
        };
        // Out of a sibling's block: to its nearer edge.
        for block in taken {
            if block.start < boundary && boundary < block.end {
                return if boundary - block.start <= block.end - boundary {
                    block.start
                } else {
                    block.end
                };
            }
        }
        boundary
    }

    /// The target bytes of the words `words` (a sub-range of `span`); for an empty run, the
    /// position of its boundary.
    fn bytes(&self, words: &Range<usize>, span: &Range<usize>) -> Range<usize> {
        if !words.is_empty() {
            return self.target_words[words.start].start..self.target_words[words.end - 1].end;
        }
        let at = if words.start > span.start {
            self.target_words[words.start - 1].end
        } else if let Some(word) = self.target_words.get(words.start) {
            word.start
        } else if let Some(word) = self.target_words.last() {
            word.end
        } else {
            self.target_len
        };
        at..at
    }
}

/// Siblings' order below the top level: cues keep theirs, what is inside a cue moves freely.
fn order_within(_order: Order) -> Order {
    Order::Target
}

/// A penalty larger than any number of votes: an empty element only when unavoidable.
const EMPTY: i64 = 1 << 40;

/// Disjoint, ordered runs of `labels` (0 = parent, j = the j-th child) for `children`
/// children, agreeing with as many labels as possible, each non-empty when there are words
/// enough. Returns one run (start..end, indices into `labels`) per child.
#[allow(clippy::needless_range_loop)] // i is a boundary (0..=n), not only an index
fn best_blocks(labels: &[usize], children: usize) -> Vec<Range<usize>> {
    if children == 0 {
        return Vec::new();
    }
    let n = labels.len();
    let k = children;
    // State index: 2 * j + inside, for j children begun (inside: the j-th is open).
    let states = 2 * (k + 1);
    let at = |i: usize, s: usize| i * states + s;
    let mut score = vec![i64::MIN; (n + 1) * states];
    // Back-pointers: the previous state, and whether the step consumed a word.
    let mut from = vec![usize::MAX; (n + 1) * states];
    score[at(0, 0)] = 0;
    let out = |j: usize| 2 * j;
    let inside = |j: usize| 2 * j + 1;
    for i in 0..=n {
        // Moves that consume no word, in increasing j so that they chain: close the open
        // child, or open and close an empty one.
        for j in 0..=k {
            if j >= 1 {
                let (a, b) = (at(i, inside(j)), at(i, out(j)));
                if score[a] != i64::MIN && score[a] > score[b] {
                    score[b] = score[a];
                    from[b] = a;
                }
            }
            if j < k {
                let (a, b) = (at(i, out(j)), at(i, out(j + 1)));
                if score[a] != i64::MIN && score[a].saturating_sub(EMPTY) > score[b] {
                    score[b] = score[a].saturating_sub(EMPTY);
                    from[b] = a;
                }
            }
        }
        if i == n {
            break;
        }
        let label = labels[i];
        let gain = |l: usize| i64::from(label == l);
        for j in 0..=k {
            for (state, next, l) in [
                // Outside: the word stays in the parent, or begins child j + 1.
                (out(j), out(j), 0),
                (out(j), inside(j + 1), j + 1),
                // Inside child j: the word continues it.
                (inside(j), inside(j), j),
            ] {
                if next >= states || (state == inside(j) && j == 0) {
                    continue;
                }
                let a = at(i, state);
                if score[a] == i64::MIN {
                    continue;
                }
                let b = at(i + 1, next);
                let value = score[a] + gain(l);
                if value > score[b] {
                    score[b] = value;
                    from[b] = a;
                }
            }
        }
    }
    // Walk back from the end, noting where each child opened and closed.
    let mut blocks = vec![0..0; k];
    let mut cell = at(n, out(k));
    let mut end_of: Vec<Option<usize>> = vec![None; k + 1];
    while cell != at(0, 0) {
        let (i, s) = (cell / states, cell % states);
        let prev = from[cell];
        if prev == usize::MAX {
            break;
        }
        let (pi, ps) = (prev / states, prev % states);
        let j = s / 2;
        let pj = ps / 2;
        if s % 2 == 1 && ps % 2 == 1 && pj == j && pi + 1 == i {
            // Continued child j.
        } else if s % 2 == 1 && pi + 1 == i {
            // Child j opened at word pi.
            blocks[j - 1].start = pi;
            blocks[j - 1].end = end_of[j].unwrap_or(i);
        } else if s % 2 == 0 && ps % 2 == 1 && pi == i {
            // Child pj closed at boundary i.
            end_of[pj] = Some(i);
        } else if s % 2 == 0 && ps % 2 == 0 && pj + 1 == j && pi == i {
            // An empty child j at boundary i.
            blocks[j - 1] = i..i;
        }
        cell = prev;
    }
    blocks
}

/// A cheap approximation of [`best_blocks`] for huge blocks: each child spans the words
/// voting for it, clipped so that the runs stay ordered and disjoint.
fn monotone_blocks(labels: &[usize], children: usize) -> Vec<Range<usize>> {
    let mut blocks = Vec::with_capacity(children);
    let mut floor = 0;
    for j in 1..=children {
        let first = labels.iter().position(|&l| l == j);
        let last = labels.iter().rposition(|&l| l == j);
        let block = match (first, last) {
            (Some(a), Some(b)) if b + 1 > floor => a.max(floor)..b + 1,
            _ => floor..floor,
        };
        floor = block.end;
        blocks.push(block);
    }
    blocks
}

/// Writes `target` with the placed elements' markup around their words: text goes through
/// `escape`, and `markup(placed, opening)` writes an element's start (`true`) or end
/// (`false`); a void element is written once, as its start.
pub fn weave<T>(
    target: &str,
    placed: &[Placed<'_, T>],
    escape: &mut dyn FnMut(&str, &mut String),
    markup: &mut dyn FnMut(&Placed<'_, T>, bool, &mut String),
) -> String {
    let mut out = String::with_capacity(target.len() * 2);
    let mut cursor = 0;
    weave_into(target, placed, &mut cursor, &mut out, escape, markup);
    escape(target.get(cursor..).unwrap_or(""), &mut out);
    out
}

fn weave_into<T>(
    target: &str,
    placed: &[Placed<'_, T>],
    cursor: &mut usize,
    out: &mut String,
    escape: &mut dyn FnMut(&str, &mut String),
    markup: &mut dyn FnMut(&Placed<'_, T>, bool, &mut String),
) {
    for node in placed {
        let start = node.range.start.max(*cursor).min(target.len());
        escape(target.get(*cursor..start).unwrap_or(""), out);
        *cursor = start;
        markup(node, true, out);
        if node.element.void {
            continue;
        }
        weave_into(target, &node.children, cursor, out, escape, markup);
        let end = node.range.end.max(*cursor).min(target.len());
        escape(target.get(*cursor..end).unwrap_or(""), out);
        *cursor = end;
        markup(node, false, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element named `name` over the first occurrence of `covered` in `source`.
    fn span(source: &str, covered: &str, name: &'static str) -> Element<&'static str> {
        let start = source.find(covered).expect("covered text");
        Element {
            range: start..start + covered.len(),
            void: false,
            children: Vec::new(),
            data: name,
        }
    }

    fn void(source: &str, before: &str, name: &'static str) -> Element<&'static str> {
        let at = source.find(before).expect("anchor text") + before.len();
        Element {
            range: at..at,
            void: true,
            children: Vec::new(),
            data: name,
        }
    }

    /// A word-level alignment written as (source word, target word) pairs, one token per
    /// word.
    fn alignment(source: &str, target: &str, pairs: &[(usize, usize)]) -> Alignment {
        Alignment {
            source: words(source),
            target: words(target),
            pairs: pairs.to_vec(),
        }
    }

    /// The projection written with `<name>` / `</name>` tags and `<name/>` for voids.
    fn render(
        source: &str,
        target: &str,
        elements: &[Element<&'static str>],
        alignment: Option<&Alignment>,
    ) -> String {
        let pair = SentencePair {
            source: 0..source.len(),
            target,
            alignment,
        };
        let projection = project(source, &[pair], elements, Order::Target);
        weave(
            &projection.target,
            &projection.placed,
            &mut |text, out| out.push_str(text),
            &mut |placed, open, out| match (placed.element.void, open) {
                (true, _) => out.push_str(&format!("<{}/>", placed.element.data)),
                (false, true) => out.push_str(&format!("<{}>", placed.element.data)),
                (false, false) => out.push_str(&format!("</{}>", placed.element.data)),
            },
        )
    }

    #[test]
    fn a_link_follows_its_words_through_reordering() {
        let fr = "la maison bleue de Paul";
        let en = "Paul's blue house";
        // la-? maison-house bleue-blue de-? Paul-Paul's
        let a = alignment(fr, en, &[(4, 0), (2, 1), (1, 2)]);
        let link = span(fr, "maison bleue", "a");
        assert_eq!(
            render(fr, en, &[link], Some(&a)),
            "Paul's <a>blue house</a>"
        );
    }

    #[test]
    fn crossing_siblings_swap_places() {
        let fr = "un chat noir";
        let en = "a black cat";
        let a = alignment(fr, en, &[(0, 0), (2, 1), (1, 2)]);
        let elements = [span(fr, "chat", "b"), span(fr, "noir", "i")];
        assert_eq!(
            render(fr, en, &elements, Some(&a)),
            "a <i>black</i> <b>cat</b>"
        );
    }

    #[test]
    fn one_source_word_to_many_target_words() {
        let fr = "il a démissionné hier";
        let en = "he handed in his resignation yesterday";
        let a = alignment(fr, en, &[(0, 0), (2, 1), (2, 2), (2, 3), (2, 4), (3, 5)]);
        let elements = [span(fr, "démissionné", "em")];
        assert_eq!(
            render(fr, en, &elements, Some(&a)),
            "he <em>handed in his resignation</em> yesterday"
        );
    }

    #[test]
    fn unaligned_words_fall_back_to_their_relative_position() {
        let fr = "Bonjour le monde";
        let en = "Hello world";
        // No alignment at all: proportional positions.
        let elements = [span(fr, "monde", "b")];
        assert_eq!(render(fr, en, &elements, None), "Hello <b>world</b>");
        // An alignment that leaves "world" unaligned: the same fallback for that word.
        let a = alignment(fr, en, &[(0, 0)]);
        assert_eq!(render(fr, en, &elements, Some(&a)), "Hello <b>world</b>");
    }

    #[test]
    fn tags_at_sentence_edges() {
        let fr = "Bonjour tout le monde.";
        let en = "Hello everyone.";
        let a = alignment(fr, en, &[(0, 0), (3, 1)]);
        assert_eq!(
            render(fr, en, &[span(fr, fr, "b")], Some(&a)),
            "<b>Hello everyone.</b>"
        );
        assert_eq!(
            render(fr, en, &[span(fr, "Bonjour", "i")], Some(&a)),
            "<i>Hello</i> everyone."
        );
        assert_eq!(
            render(fr, en, &[span(fr, "monde.", "i")], Some(&a)),
            "Hello <i>everyone.</i>"
        );
        // Voids at both edges.
        let elements = [void(fr, "", "img"), void(fr, "monde.", "br")];
        assert_eq!(
            render(fr, en, &elements, Some(&a)),
            "<img/>Hello everyone.<br/>"
        );
    }

    #[test]
    fn nested_elements_stay_nested() {
        let fr = "le très grand chat dort";
        let en = "the very big cat sleeps";
        let a = alignment(fr, en, &[(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]);
        let mut outer = span(fr, "très grand chat", "a");
        outer.children = vec![span(fr, "très", "em")];
        assert_eq!(
            render(fr, en, &[outer.clone()], Some(&a)),
            "the <a><em>very</em> big cat</a> sleeps"
        );
        // Even when the inner words are aligned outside the outer element, the inner one
        // stays inside it.
        let crossed = alignment(fr, en, &[(0, 0), (4, 1), (2, 2), (3, 3), (1, 4)]);
        let out = render(fr, en, &[outer], Some(&crossed));
        let a_open = out.find("<a>").unwrap();
        let a_close = out.find("</a>").unwrap();
        let em = out.find("<em>").unwrap();
        let em_close = out.find("</em>").unwrap();
        assert!(a_open < em && em_close < a_close, "{out}");
        assert!(!out.contains("<em></em>"), "{out}");
    }

    #[test]
    fn void_elements_follow_the_word_before_them() {
        let fr = "Premier vers<br>second vers";
        let plain = "Premier vers second vers";
        let en = "First line second line";
        let a = alignment(plain, en, &[(0, 0), (1, 1), (2, 2), (3, 3)]);
        let _ = fr;
        let elements = [void(plain, "Premier vers", "br")];
        assert_eq!(
            render(plain, en, &elements, Some(&a)),
            "First line<br/> second line"
        );
        // Reordered: the void follows its anchor word wherever it went.
        let swapped = alignment(plain, en, &[(2, 0), (3, 1), (0, 2), (1, 3)]);
        assert_eq!(
            render(plain, en, &elements, Some(&swapped)),
            "First line second line<br/>"
        );
    }

    #[test]
    fn a_void_inside_a_word_stays_before_its_punctuation() {
        let fr = "Voir la note.";
        let en = "See the note.";
        let a = alignment(fr, en, &[(0, 0), (1, 1), (2, 2)]);
        let elements = [void(fr, "la note", "sup")];
        assert_eq!(render(fr, en, &elements, Some(&a)), "See the note<sup/>.");
    }

    #[test]
    fn no_element_lost_duplicated_or_empty() {
        // Three elements, every target word aligned to the first source word.
        let fr = "un deux trois";
        let en = "one two three";
        let a = alignment(fr, en, &[(0, 0), (0, 1), (0, 2)]);
        let elements = [
            span(fr, "un", "a"),
            span(fr, "deux", "b"),
            span(fr, "trois", "c"),
        ];
        let out = render(fr, en, &elements, Some(&a));
        for name in ["a", "b", "c"] {
            assert_eq!(out.matches(&format!("<{name}>")).count(), 1, "{out}");
            assert!(!out.contains(&format!("<{name}></{name}>")), "{out}");
        }
        // More elements than words: nothing is lost, the extra one is empty.
        let out = render(fr, "one", &elements, None);
        for name in ["a", "b", "c"] {
            assert_eq!(out.matches(&format!("<{name}>")).count(), 1, "{out}");
            assert_eq!(out.matches(&format!("</{name}>")).count(), 1, "{out}");
        }
        assert_eq!(out.replace(['<', '>', '/', 'a', 'b', 'c'], ""), "one");
    }

    #[test]
    fn source_order_keeps_cues_in_place() {
        let fr = "je pense que oui";
        let en = "yes I think";
        let a = alignment(fr, en, &[(3, 0), (0, 1), (1, 2)]);
        let cues = [span(fr, "je pense", "1"), span(fr, "que oui", "2")];
        let pair = SentencePair {
            source: 0..fr.len(),
            target: en,
            alignment: Some(&a),
        };
        let projection = project(fr, &[pair], &cues, Order::Source);
        let names: Vec<&str> = projection.placed.iter().map(|p| p.element.data).collect();
        assert_eq!(names, ["1", "2"]);
        assert!(projection.placed.iter().all(|p| !p.range.is_empty()));
        assert!(projection.placed[0].range.end <= projection.placed[1].range.start);
    }

    #[test]
    fn several_sentences_and_a_span_across_them() {
        let fr = "Il pleut. Nous restons ici.";
        let en1 = "It rains.";
        let en2 = "We stay here.";
        let a1 = alignment("Il pleut.", en1, &[(0, 0), (1, 1)]);
        let a2 = alignment("Nous restons ici.", en2, &[(0, 0), (1, 1), (2, 2)]);
        let link = span(fr, "pleut. Nous", "a");
        let pairs = [
            SentencePair {
                source: 0..9,
                target: en1,
                alignment: Some(&a1),
            },
            SentencePair {
                source: 10..fr.len(),
                target: en2,
                alignment: Some(&a2),
            },
        ];
        let links = [link];
        let projection = project(fr, &pairs, &links, Order::Target);
        assert_eq!(projection.target, "It rains. We stay here.");
        let out = weave(
            &projection.target,
            &projection.placed,
            &mut |t, o| o.push_str(t),
            &mut |_, open, o| o.push_str(if open { "[" } else { "]" }),
        );
        assert_eq!(out, "It [rains. We] stay here.");
    }

    #[test]
    #[allow(clippy::reversed_empty_ranges)] // reversed ranges are the point
    fn bogus_alignments_never_panic() {
        let fr = "un deux";
        let en = "one two";
        let a = Alignment {
            source: vec![0..100, 50..2],
            target: vec![3..1, 0..3],
            pairs: vec![(0, 0), (1, 1), (7, 9), (1, 0)],
        };
        let out = render(fr, en, &[span(fr, "deux", "b")], Some(&a));
        assert_eq!(out.matches("<b>").count(), 1);
        // An empty translation keeps every element.
        let out = render(fr, "", &[span(fr, "deux", "b"), void(fr, "un", "br")], None);
        assert_eq!(out, "<b></b><br/>");
    }
}
