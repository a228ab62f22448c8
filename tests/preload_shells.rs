//! Shells and the everyday tools that start programs (preload spec §9 rows 1, 2, 16–20, 22,
//! 28, 30), under the real library against a real daemon: a denied program never runs
//! (its marker is absent), an allowed one does, and descendants stay covered even when the
//! environment is scrubbed or the control variables are spoofed.

use rampart_e2e::{Lab, run, run_text};

fn lab() -> Lab {
    let mut lab = Lab::new();
    lab.start(&[]);
    lab
}

#[test]
fn bash_runs_allowed_commands_and_blocks_denied_ones() {
    let lab = lab();
    let (out, err, code) = run_text(lab.command("/bin/bash").args([
        "-c",
        "allowed one; echo hi | cat; forbidden two; echo after=$?",
    ]));
    assert!(
        lab.marker("allowed-one"),
        "allowed program did not run: {err}"
    );
    assert!(!lab.marker("forbidden-two"), "denied program ran");
    assert!(out.contains("hi"), "{out}");
    assert!(out.contains("after=126"), "bash reports 126: {out}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(err.contains("rampart: blocked: forbidden two"), "{err}");
    assert_eq!(code, Some(0));
    // One request per external program; the path is absolute and argv0 as typed.
    let reqs = lab.requests_for("forbidden two");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0]["path"], lab.bin("forbidden").display().to_string());
    assert_eq!(reqs[0]["argv"][0], "forbidden");
    assert_eq!(reqs[0]["entry"], "execve");
    assert_eq!(reqs[0]["decision"], "deny");
    assert_eq!(lab.requests_for("cat").len(), 1);
}

#[test]
fn dash_exec_and_spoofed_argv0_report_the_real_path() {
    let lab = lab();
    let (_, err, code) = run_text(&mut lab.sh("exec forbidden one"));
    assert!(!lab.marker("forbidden-one"));
    assert_ne!(code, Some(0), "{err}");
    // bash's `exec -a` sets argv[0]; the request still names the real program.
    let forbidden = lab.bin("forbidden").display().to_string();
    let (_, err, _) = run_text(
        lab.command("/bin/bash")
            .args(["-c", &format!("exec -a harmless {forbidden} two")]),
    );
    assert!(!lab.marker("forbidden-two"), "{err}");
    let reqs = lab.requests_for("forbidden");
    assert!(
        reqs.iter()
            .any(|r| r["argv"][0] == "harmless" && r["path"] == forbidden.as_str()),
        "{reqs:?}"
    );
}

#[test]
fn scrubbed_environments_stay_covered() {
    let lab = lab();
    let indirect = lab.bin("indirect").display().to_string();
    for (i, script) in [
        format!("env -i /bin/sh {indirect} a"),
        format!("env -u LD_PRELOAD /bin/sh {indirect} b"),
        format!("env RAMPART_MODE=disabled RAMPART_FAIL_OPEN=1 LD_PRELOAD=/nonexistent.so /bin/sh {indirect} c"),
        format!("env RAMPART_SOCKET=/tmp/elsewhere.sock /bin/sh {indirect} d"),
    ]
    .iter()
    .enumerate()
    {
        let name = ["a", "b", "c", "d"][i];
        let (_, err, _) = run_text(&mut lab.sh(script));
        assert!(!lab.marker(&format!("forbidden-{name}")), "{script}: the grandchild ran\n{err}");
        assert!(err.contains("rampart: blocked:"), "{script}: {err}");
    }
    // The spoofed control variables never reach the child: it sees the trusted values.
    let (out, _, _) =
        run_text(&mut lab.sh("env RAMPART_MODE=disabled LD_AUDIT=/x.so /usr/bin/env"));
    assert!(out.contains("RAMPART_MODE=enforce"), "{out}");
    assert!(!out.contains("RAMPART_MODE=disabled"), "{out}");
    assert!(!out.contains("LD_AUDIT"), "{out}");
    assert!(
        out.contains(&format!(
            "LD_PRELOAD={}",
            rampart_e2e::artifacts().library.display()
        )),
        "{out}"
    );
    let (out, _, _) = run_text(&mut lab.sh("env -i /usr/bin/env"));
    assert!(out.contains("LD_PRELOAD="), "{out}");
    assert!(
        out.contains(&format!("RAMPART_SOCKET={}", lab.socket().display())),
        "{out}"
    );
}

#[test]
fn make_recipes_are_checked() {
    let lab = lab();
    let dir = lab.root().join("work");
    std::fs::write(
        dir.join("Makefile"),
        "all:\n\tallowed make1\n\techo hi | cat\n\tforbidden make2\n",
    )
    .unwrap();
    let (_, err, code) = run_text(lab.command("make").arg("-s"));
    assert!(lab.marker("allowed-make1"), "{err}");
    assert!(!lab.marker("forbidden-make2"));
    assert_ne!(code, Some(0));
    let reqs = lab.requests_for("forbidden make2");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        reqs[0]["entry"]
            .as_str()
            .unwrap()
            .starts_with("posix_spawn"),
        "{reqs:?}"
    );
    // The recipe with a pipe goes through /bin/sh -c.
    assert!(
        lab.exec_requests().iter().any(|r| r["path"] == "/bin/sh"
            || r["path"] == "/usr/bin/dash"
            || r["argv"][0] == "/bin/sh"),
        "{:?}",
        lab.exec_requests()
    );
}

#[test]
fn xargs_and_find_exec_are_checked() {
    let lab = lab();
    run(&mut lab.sh("echo x1 | xargs indirect; echo y1 | xargs allowed"));
    assert!(!lab.marker("forbidden-x1"));
    assert!(lab.marker("allowed-y1"));
    run(&mut lab
        .sh("find . -maxdepth 0 -exec indirect x2 \\; ; find . -maxdepth 0 -exec allowed y2 {} +"));
    assert!(!lab.marker("forbidden-x2"));
    assert!(lab.marker("allowed-y2"));
    // xargs and find start their programs with execvp, reported by resolved path.
    let indirect = lab.bin("indirect").display().to_string();
    let reqs: Vec<_> = lab
        .exec_requests()
        .into_iter()
        .filter(|r| r["path"] == indirect.as_str())
        .collect();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(
        reqs.iter()
            .all(|r| r["entry"] == "execvp" && r["requested"] == "indirect"),
        "{reqs:?}"
    );
}

#[test]
fn perl_system_and_pipes_go_through_the_execl_shim() {
    let lab = lab();
    let (_, err, _) = run_text(lab.command("perl").args([
        "-e",
        "system('forbidden p1 | cat'); system('allowed', 'p2'); open(my $f, '-|', 'forbidden p3') and <$f>;",
    ]));
    assert!(!lab.marker("forbidden-p1"), "{err}");
    assert!(lab.marker("allowed-p2"), "{err}");
    assert!(!lab.marker("forbidden-p3"), "{err}");
    let reqs = lab.requests_for("forbidden p1");
    assert!(reqs.iter().any(|r| r["entry"] == "execl"), "{reqs:?}");
}

#[test]
fn git_aliases_are_checked() {
    let lab = lab();
    let (_, err, _) = run_text(
        lab.command("git")
            .args(["-c", "alias.x=!forbidden g1", "x"]),
    );
    assert!(!lab.marker("forbidden-g1"), "{err}");
    assert!(err.contains("rampart: blocked:"), "{err}");
}

#[test]
fn scripts_without_shebang_fall_back_to_sh_and_shebang_env_works() {
    let lab = lab();
    let noshebang = lab.bin("noshebang");
    std::fs::write(&noshebang, "allowed s1\n").unwrap();
    std::fs::set_permissions(
        &noshebang,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let viaenv = lab.bin("viaenv");
    std::fs::write(&viaenv, "#!/usr/bin/env bash\nallowed s2\nforbidden s3\n").unwrap();
    std::fs::set_permissions(&viaenv, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // perl's exec of a bare name uses execvp.
    run(lab
        .command("perl")
        .args(["-e", "exec('noshebang') or exit 9"]));
    assert!(lab.marker("allowed-s1"), "ENOEXEC fallback to /bin/sh");
    run(lab.command("perl").args(["-e", "exec('viaenv') or exit 9"]));
    assert!(lab.marker("allowed-s2"));
    assert!(!lab.marker("forbidden-s3"));
    let reqs = lab.requests_for("viaenv");
    assert!(
        reqs.iter()
            .any(|r| r["flags"].as_array().unwrap().iter().any(|f| f == "script")),
        "{reqs:?}"
    );
}

#[test]
fn no_library_descriptors_leak_into_children() {
    let lab = lab();
    // The same listing with and without the library: whatever the test runner passes down
    // (a jobserver pipe…) appears in both; the library must add nothing.
    let listing = |preloaded: bool| {
        let mut cmd = lab.sh("ls /proc/self/fd");
        if !preloaded {
            cmd.env_remove("LD_PRELOAD");
        }
        let (out, err, _) = run_text(&mut cmd);
        assert!(err.is_empty(), "{err}");
        let mut fds: Vec<String> = out.lines().map(str::to_string).collect();
        fds.sort();
        fds
    };
    let without = listing(false);
    let with = listing(true);
    assert_eq!(with, without);
    assert!(!with.is_empty());
}

#[test]
fn a_relative_ld_preload_still_cascades_after_cd() {
    let lab = lab();
    let lib = &rampart_e2e::artifacts().library;
    let dir = lib.parent().unwrap();
    let indirect = lab.bin("indirect").display().to_string();
    let (out, err, _) = run_text(
        lab.command("/bin/sh")
            .args([
                "-c",
                &format!("cd / && /bin/sh {indirect} r1; /usr/bin/env"),
            ])
            .current_dir(dir)
            .env("LD_PRELOAD", "./librampart.so"),
    );
    assert!(!lab.marker("forbidden-r1"), "{err}");
    assert!(
        out.contains(&format!("LD_PRELOAD={}", lib.display())),
        "{out}"
    );
}

#[test]
fn node_child_process_is_checked_when_node_exists() {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("node not installed: skipped");
        return;
    }
    let lab = lab();
    let indirect = lab.bin("indirect").display().to_string();
    let script = format!(
        r#"const cp = require('child_process');
const r = cp.spawnSync('forbidden', ['n1']);
console.log('code=' + (r.error && r.error.code));
cp.spawnSync('allowed', ['n2']);
try {{ cp.execSync('forbidden n3', {{stdio: 'ignore'}}); }} catch (e) {{ console.log('exec-threw'); }}
cp.spawnSync('/bin/sh', ['{indirect}', 'n4'], {{env: {{}}}});
"#
    );
    let (out, err, _) = run_text(lab.command("node").args(["-e", &script]));
    assert!(out.contains("code=EPERM"), "{out}{err}");
    assert!(out.contains("exec-threw"), "{out}{err}");
    assert!(lab.marker("allowed-n2"), "{err}");
    assert!(!lab.marker("forbidden-n1"));
    assert!(!lab.marker("forbidden-n3"));
    assert!(!lab.marker("forbidden-n4"), "env:{{}} child escaped");
}
