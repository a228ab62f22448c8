//! Every exported entry point of librampart.so, driven from C (`tests/probe/probe.c`,
//! preload spec §9 rows 12, 21, 23): each produces exactly one request naming the entry
//! point, a deny returns that function's failure shape (R9) and the program does not run,
//! an allow runs it with the trusted environment re-injected, and targets the library
//! cannot follow are flagged.

use rampart_e2e::{Lab, artifacts, run_text};

fn lab() -> Lab {
    let mut lab = Lab::new();
    lab.start(&[]);
    lab
}

/// Runs `probe ENTRY TARGET ARGS…` under the library; returns (stdout, stderr).
fn probe(lab: &Lab, entry: &str, target: &str, args: &[&str]) -> (String, String) {
    let (out, err, code) = run_text(
        lab.command(&artifacts().probe)
            .arg(entry)
            .arg(target)
            .args(args),
    );
    assert_eq!(code, Some(0), "probe {entry} {target}: {out}{err}");
    (out, err)
}

/// The exec-style entries: path-taking ones get the absolute path, the `p` ones a name.
const EXEC_ENTRIES: &[(&str, bool)] = &[
    ("execve", false),
    ("execv", false),
    ("execvp", true),
    ("execvpe", true),
    ("execl", false),
    ("execle", false),
    ("execlp", true),
    ("execveat", false),
    ("syscall_execve", false),
    ("syscall_execveat", false),
    ("fexecve", false),
];

#[test]
fn each_exec_entry_point_denies_with_eperm_and_asks_once() {
    let lab = lab();
    let forbidden = lab.bin("forbidden").display().to_string();
    for &(entry, by_name) in EXEC_ENTRIES {
        let marker = format!("d_{entry}_");
        let target = if by_name { "forbidden" } else { &forbidden };
        let (out, err) = probe(&lab, entry, target, &[&marker]);
        assert!(out.contains("ret=-1 errno=1"), "{entry}: {out}{err}");
        assert!(!lab.marker(&format!("forbidden-{marker}")), "{entry}: ran");
        assert!(err.contains("rampart: blocked: "), "{entry}: {err}");
        let reqs = lab.requests_for(&marker);
        assert_eq!(reqs.len(), 1, "{entry}: {reqs:?}");
        let wire = match entry {
            "syscall_execve" | "syscall_execveat" => entry.to_string(),
            e => e.to_string(),
        };
        assert_eq!(reqs[0]["entry"], wire.as_str(), "{reqs:?}");
        assert_eq!(reqs[0]["path"], forbidden.as_str(), "{entry}: {reqs:?}");
        assert_eq!(reqs[0]["decision"], "deny");
    }
}

#[test]
fn each_exec_entry_point_runs_allowed_programs_with_the_library_reinjected() {
    let lab = lab();
    let allowed = lab.bin("allowed").display().to_string();
    for &(entry, by_name) in EXEC_ENTRIES {
        let marker = format!("a_{entry}_");
        let target = if by_name { "allowed" } else { &allowed };
        // An empty environment for the entries that take one: the child must still be
        // covered, so the script's own programs are asked about too.
        let (out, err, code) = run_text(
            lab.command(&artifacts().probe)
                .args([entry, target, &marker])
                .env("PROBE_EMPTY_ENV", "1"),
        );
        assert_eq!(code, Some(0), "{entry}: {out}{err}");
        assert!(
            lab.marker(&format!("allowed-{marker}")),
            "{entry}: did not run: {out}{err}"
        );
        assert_eq!(lab.requests_for(&marker).len(), 1, "{entry}");
    }
}

#[test]
fn spawn_and_shell_entry_points_keep_their_failure_shapes() {
    let lab = lab();
    let forbidden = lab.bin("forbidden").display().to_string();
    // posix_spawn[p]: returns EPERM (1) as its result, no child.
    let (out, _) = probe(&lab, "posix_spawn", &forbidden, &["s1"]);
    assert!(out.contains("ret=1 status=-1"), "{out}");
    let (out, _) = probe(&lab, "posix_spawnp", "forbidden", &["s2"]);
    assert!(out.contains("ret=1 status=-1"), "{out}");
    // system and __libc_system: -1 with errno EPERM.
    let (out, _) = probe(&lab, "system", "forbidden", &["s3"]);
    assert!(out.contains("ret=-1 errno=1"), "{out}");
    let (out, _) = probe(&lab, "libc_system", "forbidden", &["s4"]);
    assert!(out.contains("ret=-1 errno=1"), "{out}");
    // popen and _IO_popen: NULL with errno EPERM (the probe prints ret=0 errno=…).
    let (out, _) = probe(&lab, "popen", "forbidden s5", &[]);
    assert!(out.contains("ret=0 errno=1"), "{out}");
    let (out, _) = probe(&lab, "io_popen", "forbidden s6", &[]);
    assert!(out.contains("ret=0 errno=1"), "{out}");
    // A vfork child's execve: denied inside the child, the parent unharmed.
    let (out, _) = probe(&lab, "vfork_execve", &forbidden, &["s7"]);
    assert!(
        out.contains("ret=0 status=101"),
        "child exits 100+EPERM: {out}"
    );
    for n in 1..=7 {
        assert!(!lab.marker(&format!("forbidden-s{n}")), "s{n} ran");
        assert_eq!(lab.requests_for(&format!("s{n}")).len(), 1, "s{n}");
    }
    let entries: Vec<String> = (1..=7)
        .map(|n| {
            lab.requests_for(&format!("s{n}"))[0]["entry"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        entries,
        [
            "posix_spawn",
            "posix_spawnp",
            "system",
            "system",
            "popen",
            "popen",
            "execve"
        ]
    );
}

#[test]
fn spawn_and_shell_entry_points_run_allowed_programs() {
    let lab = lab();
    let allowed = lab.bin("allowed").display().to_string();
    let (out, _) = probe(&lab, "posix_spawn", &allowed, &["t1"]);
    assert!(out.contains("ret=0 status=0"), "{out}");
    let (out, _) = probe(&lab, "posix_spawnp", "allowed", &["t2"]);
    assert!(out.contains("ret=0 status=0"), "{out}");
    let (out, _) = probe(&lab, "system", "allowed", &["t3"]);
    assert!(out.contains("ret=0 errno=0"), "{out}");
    let (out, _) = probe(&lab, "popen", "allowed t4; echo popen-out", &[]);
    assert!(out.contains("popen-out"), "{out}");
    let (out, _) = probe(&lab, "vfork_execve", &allowed, &["t5"]);
    assert!(out.contains("ret=0 status=0"), "{out}");
    for n in 1..=5 {
        assert!(lab.marker(&format!("allowed-t{n}")), "t{n} did not run");
    }
    // system() with an environment stripped of the library: the shell it starts is still
    // covered (environ repaired), so the indirect grandchild stays blocked.
    let indirect = lab.bin("indirect").display().to_string();
    let (out, err, _) = run_text(
        lab.command("/usr/bin/env")
            .args(["-u", "RAMPART_SOCKET"])
            .arg(&artifacts().probe)
            .args(["system", "/bin/sh", &indirect, "t6"]),
    );
    assert!(!lab.marker("forbidden-t6"), "{out}{err}");
}

#[test]
fn missing_candidates_are_not_asked_about() {
    let lab = lab();
    let (out, _) = probe(&lab, "execve", "/nonexistent/prog", &[]);
    assert!(
        out.contains("ret=-1 errno=2"),
        "ENOENT as without the library: {out}"
    );
    let (out, _) = probe(&lab, "execvp", "no-such-program-anywhere", &[]);
    assert!(out.contains("ret=-1 errno=2"), "{out}");
    let (out, _) = probe(&lab, "posix_spawnp", "no-such-program-anywhere", &[]);
    assert!(out.contains("ret=2 status=-1"), "{out}");
    assert!(lab.exec_requests().is_empty(), "{:?}", lab.exec_requests());
}

#[test]
fn unfollowable_targets_are_flagged_and_strict_mode_denies_them() {
    let mut lab = Lab::new();
    lab.start(&[]);
    let gonote = artifacts().gonote.display().to_string();
    probe(&lab, "execve", "/sbin/ldconfig", &["--version"]);
    probe(&lab, "execve", &gonote, &[]);
    probe(&lab, "execve", "/usr/bin/passwd", &["--help"]);
    let allowed = lab.bin("allowed").display().to_string();
    probe(&lab, "memfd", &allowed, &["m1"]);
    let flags_of = |needle: &str| -> Vec<String> {
        let reqs = lab.requests_for(needle);
        assert!(!reqs.is_empty(), "no request for {needle}");
        reqs[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    assert!(flags_of("ldconfig").contains(&"static".to_string()));
    assert!(flags_of("gonote").contains(&"go".to_string()));
    assert!(flags_of("passwd").contains(&"setuid".to_string()));
    assert!(flags_of("m1").contains(&"memfd".to_string()));
    // An ordinary dynamic binary carries none of them.
    let (_, _) = probe(&lab, "execve", "/bin/true", &[]);
    assert!(flags_of("true").is_empty(), "{:?}", flags_of("true"));

    // Strict mode: the same targets are denied and do not run.
    let mut strict = Lab::new();
    strict.start(&["--strict"]);
    let (out, _) = probe(&strict, "execve", "/sbin/ldconfig", &["--version"]);
    assert!(out.contains("ret=-1 errno=1"), "{out}");
    let (out, _) = probe(&strict, "execve", &gonote, &[]);
    assert!(out.contains("ret=-1 errno=1"), "{out}");
    let allowed = strict.bin("allowed").display().to_string();
    let (out, _) = probe(&strict, "memfd", &allowed, &["m2"]);
    assert!(out.contains("ret=-1 errno=1"), "{out}");
    assert!(!strict.marker("allowed-m2"));
    // Ordinary programs still run.
    probe(&strict, "execve", &allowed, &["m3"]);
    assert!(strict.marker("allowed-m3"));
}

#[test]
fn the_hook_path_fits_a_small_thread_stack() {
    // Threads may have small stacks. The optimized library fits a 20 KiB thread stack
    // (TLS included); the unoptimized test build needs more, so this checks 32 KiB.
    let lab = lab();
    let (out, err, code) = run_text(
        lab.command(&artifacts().probe)
            .args(["small_stack", "allowed", "tiny"])
            .env("PROBE_STACK_KB", "32"),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ret=0 status=0"), "{out}{err}");
    assert!(lab.marker("allowed-tiny"));
}

#[test]
fn a_denied_program_found_twice_on_path_is_asked_about_once() {
    // Merged-/usr systems list the same file twice (/usr/bin and /bin); glibc, CPython and
    // dash keep looping after EPERM. The second candidate must not ask (or prompt) again.
    let lab = lab();
    let twin = lab.root().join("bin-twin");
    std::os::unix::fs::symlink(lab.root().join("bin"), &twin).unwrap();
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        lab.root().join("bin").display(),
        twin.display()
    );
    // dash runs its own PATH loop over execve, trying each directory in turn.
    let (_, err, _) = run_text(lab.sh("forbidden twice; true").env("PATH", path));
    assert!(!lab.marker("forbidden-twice"));
    assert_eq!(
        lab.requests_for("twice").len(),
        1,
        "{:?}",
        lab.requests_for("twice")
    );
    assert_eq!(err.matches("rampart: blocked:").count(), 1, "{err}");
}
