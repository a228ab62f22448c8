//! `rampart eval`: JSON Lines in, one decision line out per line in, in order.

use std::io::{BufRead, BufWriter, Write};

use clap::Args;
use rampart_engine::EvalOptions;
use serde_json::{Value, json};

use crate::call_json::{call_from_json, decision_json};
use crate::policy_args::PolicyArgs;

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  echo '{\"id\":1,\"command\":\"rm -rf /\"}' | rampart eval\n  {\"id\":1,\"decision\":\"deny\",...}"
)]
pub struct EvalArgs {
    #[command(flatten)]
    policy: PolicyArgs,
}

pub fn run(a: EvalArgs) -> u8 {
    let engine = match a.policy.engine() {
        Ok(e) => e,
        Err(e) => return super::load_failed(&e),
    };
    let opts = EvalOptions::default();
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.split(b'\n') {
        let Ok(line) = line else { break };
        let reply = match serde_json::from_slice::<Value>(&line) {
            Ok(Value::Object(obj)) => {
                let id = obj.get("id").cloned().unwrap_or(Value::Null);
                match call_from_json(&obj) {
                    Ok(call) => decision_json(&id, &engine.evaluate(&call, &opts)),
                    Err(e) => json!({"id": id, "error": e}),
                }
            }
            Ok(_) => json!({"id": null, "error": "line is not a JSON object"}),
            Err(e) => json!({"id": null, "error": format!("invalid JSON: {e}")}),
        };
        if writeln!(out, "{reply}").is_err() {
            return 0;
        }
    }
    let _ = out.flush();
    0
}
