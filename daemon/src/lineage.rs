//! The process chain behind an exec request (`python agent.py → bash -c … → curl …`), read
//! from `/proc`, as context for the verifier: the same command means something else when a
//! test runner starts it than when an agent's one-liner does.

use std::path::Path;

/// Most ancestors listed (the chain stops earlier at pid 1 or an unreadable process).
const MAX_DEPTH: usize = 8;
/// Longest single command line in the chain.
const MAX_ENTRY: usize = 160;

/// The chain for an exec by `pid`, oldest first, ending with the program being started
/// (`argv`). Secrets are masked.
pub fn exec_lineage(pid: i32, argv: &[Vec<u8>]) -> Vec<String> {
    lineage_in(Path::new("/proc"), pid, argv)
}

fn lineage_in(proc: &Path, pid: i32, argv: &[Vec<u8>]) -> Vec<String> {
    let mut chain = Vec::new();
    let mut current = pid;
    while current > 1 && chain.len() < MAX_DEPTH {
        let dir = proc.join(current.to_string());
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            break;
        };
        let words: Vec<&[u8]> = cmdline
            .split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .collect();
        if !words.is_empty() {
            chain.push(render(&words));
        }
        match parent_of(&dir) {
            Some(ppid) => current = ppid,
            None => break,
        }
    }
    chain.reverse();
    let target: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    if !target.is_empty() {
        chain.push(render(&target));
    }
    chain
}

/// The parent pid from `/proc/<pid>/stat` (after the last `)`: the command name may hold
/// spaces and parentheses).
fn parent_of(dir: &Path) -> Option<i32> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn render(words: &[&[u8]]) -> String {
    let joined = words
        .iter()
        .map(|w| String::from_utf8_lossy(w))
        .collect::<Vec<_>>()
        .join(" ");
    let masked = rampart_engine::redact::redact_secrets(&joined).into_owned();
    if masked.chars().count() <= MAX_ENTRY {
        return masked;
    }
    let cut: String = masked.chars().take(MAX_ENTRY).collect();
    format!("{cut}…")
}

/// The chain as one line, for prompts and logs.
pub fn display(chain: &[String]) -> String {
    chain.join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(entries: &[(i32, i32, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, ppid, cmd) in entries {
            let d = dir.path().join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cmdline"), cmd.replace(' ', "\0") + "\0").unwrap();
            std::fs::write(
                d.join("stat"),
                format!("{pid} (odd) name) S {ppid} 1 1 0 -1"),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn the_chain_runs_from_the_oldest_ancestor_to_the_target() {
        let proc = fake_proc(&[
            (300, 200, "bash -c curl_x"),
            (200, 100, "python3 agent.py"),
            (100, 1, "sshd: me"),
        ]);
        let argv = vec![b"curl".to_vec(), b"http://x".to_vec()];
        let chain = lineage_in(proc.path(), 300, &argv);
        assert_eq!(
            chain,
            [
                "sshd: me",
                "python3 agent.py",
                "bash -c curl_x",
                "curl http://x"
            ]
        );
        assert_eq!(
            display(&chain),
            "sshd: me → python3 agent.py → bash -c curl_x → curl http://x"
        );
    }

    #[test]
    fn secrets_are_masked_and_long_lines_cut() {
        let long = "x".repeat(400);
        let proc = fake_proc(&[(50, 1, &format!("tool {long}"))]);
        let argv = vec![
            b"curl".to_vec(),
            b"-H".to_vec(),
            b"Authorization: Bearer sk-abcdefghijklmnopqrstuvwxyz123456".to_vec(),
        ];
        let chain = lineage_in(proc.path(), 50, &argv);
        assert!(chain[0].ends_with('…') && chain[0].chars().count() == MAX_ENTRY + 1);
        assert!(
            !chain[1].contains("sk-abcdefghijklmnopqrstuvwxyz123456"),
            "{}",
            chain[1]
        );
    }

    #[test]
    fn the_live_process_tree_is_readable() {
        let chain = exec_lineage(std::process::id() as i32, &[b"true".to_vec()]);
        assert!(chain.len() >= 2, "{chain:?}");
        assert_eq!(chain.last().map(String::as_str), Some("true"));
    }
}
