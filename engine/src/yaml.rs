//! A minimal YAML document tree that remembers where every node starts.
//!
//! Policy validation must name the line and column of a bad key or value, and must see
//! scalars as written (so `007` stays a string when a string is expected). The event
//! parser gives us both; this module folds its events into [`Node`]s.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line and column in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

impl Mark {
    fn from_span(span: &Span) -> Mark {
        Mark {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A scalar as written; `plain` is false for quoted and block scalars.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub mark: Mark,
}

impl Node {
    /// True for `~`, `null` and an empty plain scalar (YAML 1.2 core schema).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    pub mark: Mark,
    pub message: String,
}

/// Aliases may not expand a document beyond this many nodes (a "billion laughs" guard).
const MAX_NODES: usize = 1_000_000;

/// Parses exactly one YAML document. An empty stream yields `Ok(None)`.
pub fn parse_document(source: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut documents = 0usize;
    for item in Parser::new_from_str(source) {
        let (event, span) = item.map_err(|e| SyntaxError {
            mark: Mark {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        if let Event::DocumentStart(_) = event {
            documents += 1;
            if documents > 1 {
                return Err(SyntaxError {
                    mark: Mark::from_span(&span),
                    message: "a policy file must hold exactly one YAML document".into(),
                });
            }
        }
        builder.event(event, span)?;
    }
    Ok(builder.root)
}

#[derive(Default)]
struct Builder {
    stack: Vec<Node>,
    /// Nodes with an anchor, by anchor id, for alias resolution.
    anchors: Vec<(usize, Node)>,
    /// Anchor ids of the open collections on `stack`, parallel to it.
    open_anchors: Vec<usize>,
    root: Option<Node>,
    nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let mark = Mark::from_span(&span);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node {
                    kind: NodeKind::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    mark,
                };
                if anchor != 0 {
                    self.anchors.push((anchor, node.clone()));
                }
                self.push(node)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Node {
                    kind: NodeKind::Seq(Vec::new()),
                    mark,
                });
                self.open_anchors.push(anchor);
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Node {
                    kind: NodeKind::Map(Vec::new()),
                    mark,
                });
                self.open_anchors.push(anchor);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = self.stack.pop().expect("parser balances collections");
                let anchor = self.open_anchors.pop().unwrap_or(0);
                if anchor != 0 {
                    self.anchors.push((anchor, node.clone()));
                }
                self.push(node)?;
            }
            Event::Alias(id) => {
                let Some((_, node)) = self.anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(SyntaxError {
                        mark,
                        message: "alias refers to an unknown anchor".into(),
                    });
                };
                let mut node = node.clone();
                node.mark = mark;
                self.nodes += count_nodes(&node);
                self.push(node)?;
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                mark: node.mark,
                message: format!("document expands to more than {MAX_NODES} nodes"),
            });
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut parent.kind {
            NodeKind::Seq(items) => items.push(node),
            NodeKind::Map(pairs) => {
                // A mapping receives key then value: a pending key is stored with a
                // placeholder value that the next push replaces.
                match pairs.last_mut() {
                    Some((_, value)) if is_placeholder(value) => *value = node,
                    _ => {
                        if let Some((existing, _)) = pairs.iter().find(|(k, _)| scalar_eq(k, &node))
                        {
                            let _ = existing;
                            return Err(SyntaxError {
                                mark: node.mark,
                                message: format!(
                                    "duplicate key {:?} in the same mapping",
                                    scalar_text(&node).unwrap_or("?")
                                ),
                            });
                        }
                        pairs.push((node, placeholder()));
                    }
                }
            }
            NodeKind::Scalar { .. } => unreachable!("scalars are never open"),
        }
        Ok(())
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

const PLACEHOLDER_LINE: usize = usize::MAX;

fn placeholder() -> Node {
    Node {
        kind: NodeKind::Scalar {
            text: String::new(),
            plain: true,
        },
        mark: Mark {
            line: PLACEHOLDER_LINE,
            col: 0,
        },
    }
}

fn is_placeholder(node: &Node) -> bool {
    node.mark.line == PLACEHOLDER_LINE
}

fn scalar_text(node: &Node) -> Option<&str> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

fn scalar_eq(a: &Node, b: &Node) -> bool {
    matches!((scalar_text(a), scalar_text(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_one_based() {
        let doc = parse_document("a:\n  b: [x, 'y']\n").unwrap().unwrap();
        let NodeKind::Map(pairs) = &doc.kind else {
            panic!()
        };
        let (_, inner) = &pairs[0];
        let NodeKind::Map(inner) = &inner.kind else {
            panic!()
        };
        assert_eq!(inner[0].0.mark, Mark { line: 2, col: 3 });
        let NodeKind::Seq(items) = &inner[0].1.kind else {
            panic!()
        };
        assert_eq!(items[1].mark, Mark { line: 2, col: 10 });
    }

    #[test]
    fn duplicate_keys_and_second_documents_are_errors() {
        assert!(parse_document("a: 1\na: 2\n").is_err());
        assert!(parse_document("a: 1\n---\nb: 2\n").is_err());
        assert!(parse_document("").unwrap().is_none());
    }

    #[test]
    fn aliases_expand() {
        let doc = parse_document("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        let NodeKind::Map(pairs) = &doc.kind else {
            panic!()
        };
        assert!(matches!(&pairs[1].1.kind, NodeKind::Seq(v) if v.len() == 2));
    }
}
