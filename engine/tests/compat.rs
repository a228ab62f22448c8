//! Files in the reference project's format load unchanged; mistakes in them are reported
//! with file:line:column and a suggestion.

use rampart_engine::load::load_file;
use rampart_engine::testing::run_tests;
use rampart_engine::{Action, Engine};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/reference-format.yaml"
);

#[test]
fn reference_format_loads_unchanged_and_passes_its_tests() {
    let config = load_file(std::path::Path::new(FILE)).expect("loads");
    assert_eq!(config.default_action, Some(Action::Ask));
    assert_eq!(config.policies.len(), 7);
    assert_eq!(config.notify.as_ref().unwrap().platform, "slack");
    let engine = Engine::new(config.clone());
    let outcomes = run_tests(&engine, &config.tests, None);
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| (&o.name, &o.failure))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(outcomes.len(), 5);
}

#[test]
fn a_typo_in_it_is_pinpointed() {
    let text = std::fs::read_to_string(FILE).unwrap();
    let typo = text.replacen("path_not_matches:", "path_not_match:", 1);
    let line = typo
        .lines()
        .position(|l| l.contains("path_not_match:"))
        .unwrap()
        + 1;
    let err =
        rampart_engine::load::parse_policy(&typo, "policy.yaml", Default::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "policy.yaml:{line}:11: unknown key `path_not_match`"
        )),
        "{msg}"
    );
    assert!(msg.contains("did you mean `path_not_matches`?"), "{msg}");
}
