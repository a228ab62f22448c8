//! The standard profile against the labelled posture cases (`data/posture.jsonl`, copied
//! from the project's case set): at least 95% agreement, every `deny` label denied, no
//! hard negative denied.

use rampart_engine::{Action, Engine, EvalOptions, ToolCall, profiles};
use serde_json::Value;

struct Case {
    id: String,
    command: String,
    expect: String,
    category: String,
}

fn cases() -> Vec<Case> {
    include_str!("data/posture.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("valid JSON line");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Case {
                id: s("id"),
                command: s("command"),
                expect: s("expect"),
                category: s("category"),
            }
        })
        .collect()
}

#[test]
fn standard_profile_meets_the_posture() {
    let engine = Engine::new(profiles::load_profile("standard").expect("standard loads"));
    let opts = EvalOptions::default();
    let cases = cases();
    assert!(cases.len() >= 300, "posture file has {} cases", cases.len());
    let mut agree = 0;
    let mut missed_denies = Vec::new();
    let mut denied_negatives = Vec::new();
    let mut mismatches = Vec::new();
    for c in &cases {
        let d = engine.evaluate(&ToolCall::exec(&c.command), &opts);
        let got = d.action.as_str();
        if got == c.expect {
            agree += 1;
        } else {
            mismatches.push(format!(
                "{} expect {} got {} ({:?})",
                c.id, c.expect, got, c.command
            ));
        }
        if c.expect == "deny" && d.action != Action::Deny {
            missed_denies.push(format!("{} got {got}: {:?}", c.id, c.command));
        }
        if c.category == "hard-negative" && d.action == Action::Deny {
            denied_negatives.push(format!("{} ({:?}) by {:?}", c.id, c.command, d.policy));
        }
    }
    let rate = agree as f64 / cases.len() as f64;
    eprintln!(
        "posture agreement: {agree}/{} = {:.1}%",
        cases.len(),
        rate * 100.0
    );
    for m in &mismatches {
        eprintln!("  {m}");
    }
    assert!(
        missed_denies.is_empty(),
        "deny labels not denied:\n{}",
        missed_denies.join("\n")
    );
    assert!(
        denied_negatives.is_empty(),
        "hard negatives denied:\n{}",
        denied_negatives.join("\n")
    );
    assert!(rate >= 0.95, "agreement {:.1}% is below 95%", rate * 100.0);
}
