//! Pattern matching for a whole policy set at once.
//!
//! Every command and path pattern of every rule is compiled once, at load time, into one
//! [`PatternIndex`]. A pattern that can only match subjects containing some literal is
//! filed under that literal in one Aho-Corasick automaton, so a call costs one automaton
//! pass per reading of the command, and only the few patterns whose literal occurs are
//! ever run. The result, [`FieldHits`], says for every rule field which readings matched.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::glob::{Dialect, Glob};

/// One compiled pattern.
#[derive(Clone, Debug)]
pub enum Pattern {
    Glob(Glob),
    /// Case-insensitive substring (restrictive `command_contains`); stored lowercased.
    ContainsFold(String),
    /// Case-sensitive substring (granting `command_contains`).
    Contains(String),
}

impl Pattern {
    /// Literals every match contains, longest first.
    fn literals(&self) -> Vec<String> {
        match self {
            Pattern::Glob(g) => g.required_literals(),
            Pattern::ContainsFold(s) | Pattern::Contains(s) => vec![s.clone()],
        }
    }

    fn never(&self) -> bool {
        matches!(self, Pattern::Glob(g) if g.matches_nothing())
    }

    fn is_match(&self, subject: &str, lowered: &mut Option<String>) -> bool {
        match self {
            Pattern::Glob(g) => g.is_match(subject),
            Pattern::Contains(s) => subject.contains(s.as_str()),
            Pattern::ContainsFold(s) => {
                if s.is_ascii() && subject.is_ascii() {
                    // The automaton is ASCII case-insensitive: a hit is already exact.
                    return true;
                }
                lowered
                    .get_or_insert_with(|| subject.to_lowercase())
                    .contains(s.as_str())
            }
        }
    }
}

/// Identifies one rule field (e.g. "the command_matches of rule 3 of policy 7").
pub type FieldId = u32;

/// Builds a [`PatternIndex`], sharing identical patterns between fields.
#[derive(Default)]
pub struct IndexBuilder {
    patterns: Vec<Pattern>,
    owners: Vec<Vec<FieldId>>,
    by_key: HashMap<(u8, String), u32>,
    fields: u32,
}

/// How a field's patterns are read.
#[derive(Clone, Copy, Debug)]
pub enum FieldKind {
    Glob(Dialect),
    ContainsFold,
    Contains,
}

impl IndexBuilder {
    /// Adds a field made of `texts`, returning its id.
    pub fn field<'a>(
        &mut self,
        kind: FieldKind,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> FieldId {
        let id = self.fields;
        self.fields += 1;
        for text in texts {
            let tag = match kind {
                FieldKind::Glob(Dialect::Path) => 0,
                FieldKind::Glob(Dialect::Command {
                    star_crosses_slash: false,
                }) => 1,
                FieldKind::Glob(Dialect::Command {
                    star_crosses_slash: true,
                }) => 2,
                FieldKind::ContainsFold => 3,
                FieldKind::Contains => 4,
            };
            let key = (tag, text.to_string());
            let pid = match self.by_key.get(&key) {
                Some(&p) => p,
                None => {
                    let p = self.patterns.len() as u32;
                    self.patterns.push(match kind {
                        FieldKind::Glob(d) => Pattern::Glob(Glob::new(text, d)),
                        FieldKind::ContainsFold => Pattern::ContainsFold(text.to_lowercase()),
                        FieldKind::Contains => Pattern::Contains(text.to_string()),
                    });
                    self.owners.push(Vec::new());
                    self.by_key.insert(key, p);
                    p
                }
            };
            let owners = &mut self.owners[pid as usize];
            if owners.last() != Some(&id) {
                owners.push(id);
            }
        }
        id
    }

    pub fn build(self) -> PatternIndex {
        let mut literals: Vec<String> = Vec::new();
        let mut literal_ids: HashMap<String, usize> = HashMap::new();
        let mut by_literal: Vec<Vec<u32>> = Vec::new();
        let mut also_required: Vec<Vec<usize>> = vec![Vec::new(); self.patterns.len()];
        let mut unfiltered = Vec::new();
        for (pid, p) in self.patterns.iter().enumerate() {
            if p.never() {
                continue;
            }
            let ids: Vec<usize> = p
                .literals()
                .into_iter()
                .map(|lit| {
                    let key = lit.to_ascii_lowercase();
                    *literal_ids.entry(key.clone()).or_insert_with(|| {
                        literals.push(key);
                        literals.len() - 1
                    })
                })
                .collect();
            by_literal.resize(literals.len(), Vec::new());
            let mut ids = ids.into_iter();
            // Filed under its longest literal; the others are checked before running it.
            match ids.next() {
                Some(anchor) => {
                    by_literal[anchor].push(pid as u32);
                    also_required[pid] = ids.collect();
                }
                None => unfiltered.push(pid as u32),
            }
        }
        let automaton = (!literals.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&literals)
                .expect("literal automaton fits in memory")
        });
        PatternIndex {
            patterns: self.patterns,
            owners: self.owners,
            automaton,
            by_literal,
            also_required,
            unfiltered,
            fields: self.fields as usize,
        }
    }
}

/// All patterns of a policy set, with their literal prefilter.
#[derive(Clone, Debug)]
pub struct PatternIndex {
    patterns: Vec<Pattern>,
    owners: Vec<Vec<FieldId>>,
    automaton: Option<AhoCorasick>,
    by_literal: Vec<Vec<u32>>,
    /// Per pattern: further literal ids that must all occur before it is run.
    also_required: Vec<Vec<usize>>,
    unfiltered: Vec<u32>,
    fields: usize,
}

impl PatternIndex {
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Matches every pattern against every subject; reports per field which subjects hit.
    pub fn hits<S: AsRef<str>>(&self, subjects: &[S]) -> FieldHits {
        let words = subjects.len().div_ceil(64).max(1);
        let mut hits = FieldHits {
            words,
            bits: vec![0; self.fields * words],
        };
        let mut literal_hits: Vec<usize> = Vec::new();
        for (si, subject) in subjects.iter().enumerate() {
            let subject = subject.as_ref();
            let mut lowered = None;
            literal_hits.clear();
            if let Some(ac) = &self.automaton {
                literal_hits.extend(
                    ac.find_overlapping_iter(subject)
                        .map(|m| m.pattern().as_usize()),
                );
                literal_hits.sort_unstable();
                literal_hits.dedup();
            }
            let present = |pid: &&u32| {
                self.also_required[**pid as usize]
                    .iter()
                    .all(|l| literal_hits.binary_search(l).is_ok())
            };
            let filtered = literal_hits
                .iter()
                .flat_map(|&l| self.by_literal[l].iter())
                .filter(present);
            for &pid in filtered.chain(self.unfiltered.iter()) {
                if self.patterns[pid as usize].is_match(subject, &mut lowered) {
                    for &f in &self.owners[pid as usize] {
                        hits.set(f, si);
                    }
                }
            }
        }
        hits
    }
}

/// Which subjects each field matched, as bit rows.
#[derive(Clone, Debug)]
pub struct FieldHits {
    words: usize,
    bits: Vec<u64>,
}

impl FieldHits {
    fn set(&mut self, field: FieldId, subject: usize) {
        self.bits[field as usize * self.words + subject / 64] |= 1 << (subject % 64);
    }

    /// Did `field` match subject `subject`?
    pub fn test(&self, field: FieldId, subject: usize) -> bool {
        self.bits[field as usize * self.words + subject / 64] >> (subject % 64) & 1 == 1
    }

    /// Did `field` match any subject?
    pub fn any(&self, field: FieldId) -> bool {
        self.row(field).iter().any(|&w| w != 0)
    }

    pub fn row(&self, field: FieldId) -> &[u64] {
        let start = field as usize * self.words;
        &self.bits[start..start + self.words]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_share_patterns_and_report_subjects() {
        let mut b = IndexBuilder::default();
        let restrictive = FieldKind::Glob(Dialect::Command {
            star_crosses_slash: true,
        });
        let f1 = b.field(restrictive, ["rm -rf /", "mkfs*"]);
        let f2 = b.field(restrictive, ["rm -rf /"]);
        let f3 = b.field(FieldKind::ContainsFold, [".SSH/id_"]);
        let f4 = b.field(
            FieldKind::Glob(Dialect::Command {
                star_crosses_slash: false,
            }),
            ["*"],
        );
        let index = b.build();
        assert_eq!(index.pattern_count(), 4);
        let hits = index.hits(&["ls", "rm -rf /", "cat ~/.ssh/ID_rsa", "mkfs.ext4 /dev/sda"]);
        assert!(hits.test(f1, 1) && hits.test(f1, 3) && !hits.test(f1, 0));
        assert!(hits.test(f2, 1) && !hits.test(f2, 3));
        assert!(hits.test(f3, 2) && !hits.test(f3, 1));
        assert!((0..4).all(|i| hits.test(f4, i)));
    }

    #[test]
    fn many_subjects_use_more_words() {
        let mut b = IndexBuilder::default();
        let f = b.field(FieldKind::Contains, ["x"]);
        let index = b.build();
        let subjects: Vec<String> = (0..130)
            .map(|i| if i == 129 { "x".into() } else { "y".into() })
            .collect();
        let hits = index.hits(&subjects);
        assert!(hits.test(f, 129));
        assert!(!hits.test(f, 128));
    }
}
