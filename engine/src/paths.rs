//! Path canonicalization before path globs (policy spec §7).

/// Lexical cleaning with Go's `filepath.Clean` rules: repeated separators collapse, `.`
/// elements vanish, `..` removes the element before it (never climbing above the root),
/// and an empty result is `.`.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The spellings of a call's path that path rules are tried against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathCandidates {
    /// The cleaned path (relative paths joined to the working directory) and, when it
    /// differs, its symlink-resolved form. Granting rules must cover all of these.
    pub items: Vec<String>,
    /// How many of `items` are the target itself; the rest (the cleaned relative spelling,
    /// so project patterns such as `secrets/**` match) serve restrictive rules only.
    pub primary: usize,
}

/// Computes the path candidates. `~` is never expanded; the daemon's own working
/// directory is never used. `resolve` is false in pure previews.
pub fn path_candidates(path: &str, workdir: Option<&str>, resolve: bool) -> PathCandidates {
    if path.is_empty() {
        return PathCandidates::default();
    }
    let slashed = path.replace('\\', "/");
    let mut relative = None;
    let absolute = match workdir.filter(|w| !w.is_empty()) {
        Some(w) if !slashed.starts_with('/') && !looks_windows_absolute(&slashed) => {
            relative = Some(clean(&slashed));
            clean(&format!("{}/{}", w.replace('\\', "/"), slashed))
        }
        _ => clean(&slashed),
    };
    let mut items = vec![absolute];
    if resolve && items[0].starts_with('/') {
        let resolved = resolve_symlinks(&items[0]);
        if resolved != items[0] {
            items.push(resolved);
        }
    }
    let primary = items.len();
    if let Some(r) = relative.filter(|r| !items.contains(r)) {
        items.push(r);
    }
    PathCandidates { items, primary }
}

fn looks_windows_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/'
}

/// Resolves symlinks on the longest existing ancestor and re-appends the missing tail.
pub fn resolve_symlinks(path: &str) -> String {
    let mut head = std::path::PathBuf::from(path);
    let mut tail: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&head) {
            let mut out = real;
            for t in tail.iter().rev() {
                out.push(t);
            }
            return out.to_string_lossy().into_owned();
        }
        match (head.file_name().map(|n| n.to_os_string()), head.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                head = parent.to_path_buf();
            }
            _ => return path.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(clean("/etc/../etc/shadow"), "/etc/shadow");
        assert_eq!(clean("/home/user/../etc/shadow"), "/home/etc/shadow");
        assert_eq!(clean("//"), "/");
        assert_eq!(clean("/var/log/../.."), "/");
        assert_eq!(clean("/tmp/../"), "/");
        assert_eq!(clean("./build"), "build");
        assert_eq!(clean("../x"), "../x");
        assert_eq!(clean("~/../.."), "..");
        assert_eq!(clean(""), ".");
    }

    #[test]
    fn candidates() {
        assert_eq!(
            path_candidates("/home/user\\../etc/shadow", None, false).items,
            ["/home/etc/shadow"]
        );
        let c = path_candidates("secrets/key.pem", Some("/srv/app"), false);
        assert_eq!(c.items, ["/srv/app/secrets/key.pem", "secrets/key.pem"]);
        assert_eq!(c.primary, 1);
        assert_eq!(
            path_candidates("~/.ssh/id_rsa", None, false).items,
            ["~/.ssh/id_rsa"]
        );
    }

    #[test]
    fn symlinks_resolve_on_existing_ancestor() {
        let dir = std::env::temp_dir().join(format!("rampart-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        let got = resolve_symlinks(&format!("{}/link/missing/file", dir.display()));
        let real = std::fs::canonicalize(dir.join("real")).unwrap();
        assert_eq!(got, format!("{}/missing/file", real.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
