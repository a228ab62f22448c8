//! Load errors: what was wrong, where (file:line:column), and how to fix it.

use std::fmt;

use crate::yaml::Mark;

/// A policy file (or suite) could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file, as given by the caller (`embedded:<name>` for built-in profiles).
    pub file: String,
    /// Where in the file; `None` for whole-file problems (unreadable, too large).
    pub mark: Option<Mark>,
    pub message: String,
    /// A did-you-mean or how-to-fix hint.
    pub help: Option<String>,
}

impl LoadError {
    pub fn at(file: &str, mark: Mark, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_string(),
            mark: Some(mark),
            message: message.into(),
            help: None,
        }
    }

    pub fn whole(file: &str, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_string(),
            mark: None,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> LoadError {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mark {
            Some(m) => write!(f, "{}:{}:{}: {}", self.file, m.line, m.col, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

/// The closest candidate to a misspelled word, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word_l = word.to_ascii_lowercase();
    let mut best: Option<(&str, usize)> = None;
    for &c in candidates {
        let d = edit_distance(&word_l, c);
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((c, d));
        }
    }
    let (c, d) = best?;
    let limit = (word.len().max(c.len()) / 3).max(2);
    let shares_prefix = word_l.get(..4).is_some_and(|p| c.starts_with(p));
    (d <= limit || shares_prefix).then_some(c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys() {
        let keys = ["command_matches", "command_contains", "path_matches"];
        assert_eq!(
            did_you_mean("command_match", &keys),
            Some("command_matches")
        );
        assert_eq!(
            did_you_mean("comand_contains", &keys),
            Some("command_contains")
        );
        assert_eq!(did_you_mean("zzz", &keys), None);
    }

    #[test]
    fn display_names_file_line_column_and_help() {
        let e = LoadError::at("p.yaml", Mark { line: 3, col: 7 }, "unknown key `x`")
            .with_help("did you mean `y`?");
        assert_eq!(
            e.to_string(),
            "p.yaml:3:7: unknown key `x` (did you mean `y`?)"
        );
    }
}
