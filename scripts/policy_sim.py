#!/usr/bin/env python3
"""Approximate Python model of the rampart policy engine (spec/policy-language.md).

Used only to tune the shipped profiles before/alongside the Rust engine. It follows the
spec's matching rules (glob dialects §3, normalization §5, action-aware matching §6, D1-D4)
closely but not exhaustively; the Rust engine is authoritative.

    python3 scripts/policy_sim.py policies/standard.yaml < calls.jsonl
    python3 scripts/policy_sim.py --tests policies/standard.yaml
"""
import json
import posixpath
import re
import sys

import yaml

RANK = {"allow": 0, "watch": 1, "ask": 2, "verify": 3, "webhook": 3, "deny": 4}

# ---------------------------------------------------------------- globs (§3)
_cache = {}


def _class(p, i):
    # p[i] == '['; return (regex, next index) or None
    j = i + 1
    neg = False
    if j < len(p) and p[j] in "^!":
        neg = True
        j += 1
    start = j
    while j < len(p) and (p[j] != "]" or j == start):
        j += 1
    if j >= len(p):
        return None
    body = p[start:j].replace("\\", "\\\\").replace("]", "\\]")
    if neg:
        return "[^/" + body + "]", j + 1
    return "(?!/)[" + body + "]", j + 1


def _to_regex(p, star):
    out = []
    i = 0
    while i < len(p):
        c = p[i]
        if c == "*":
            if p.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append(star)
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            r = _class(p, i)
            if r:
                out.append(r[0])
                i = r[1]
                continue
            out.append(re.escape(c))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _rx(p, star):
    k = (p, star)
    r = _cache.get(k)
    if r is None:
        r = re.compile(_to_regex(p, star) + r"\Z", re.S)
        _cache[k] = r
    return r


def cmd_glob(pat, s, loose=False):
    """Command-style glob. loose=True is D1 (restrictive command_matches)."""
    if pat == "":
        return False
    if pat == "*":
        return True
    pat = pat.replace("\\", "/")
    s = s.replace("\\", "/")
    star = ".*" if loose else "[^/]*"
    if "**" in pat:
        if pat.count("**") > 2:
            return False
        if _rx(pat, star).match(s):
            return True
        if pat.startswith("**/") and _rx(pat[3:], star).match(s):
            return True
        return False
    if pat.endswith("*") and s.startswith(pat[:-1]):
        return True
    if pat.startswith("*"):
        pos = 0
        for piece in pat.split("*"):
            if not piece:
                continue
            k = s.find(piece, pos)
            if k < 0:
                return False
            pos = k + len(piece)
        return True
    return bool(_rx(pat, star).match(s))


def fs_glob(pat, s):
    if pat == "":
        return False
    pat = pat.replace("\\", "/")
    s = s.replace("\\", "/")
    if pat.count("**") > 2:
        return False
    if _rx(pat, "[^/]*").match(s):
        return True
    if pat.startswith("**/") and _rx(pat[3:], "[^/]*").match(s):
        return True
    return False


# ---------------------------------------------------------------- shell parsing (§5)
def sanitize(s):
    s = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", s)
    s = s.replace("\r", "")
    return "".join(ch for ch in s if ch in "\t\n" or ord(ch) >= 0x20)


def split_segments(s):
    segs, cur = [], []
    i, n = 0, len(s)
    sq = dq = False
    depth = 0
    bt = False
    while i < n:
        c = s[i]
        if sq:
            cur.append(c)
            if c == "'":
                sq = False
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            cur.append(s[i:i + 2])
            i += 2
            continue
        if dq:
            cur.append(c)
            if c == '"':
                dq = False
            elif s.startswith("$(", i):
                depth += 1
                cur.append("(")
                i += 1
            elif c == ")" and depth:
                depth -= 1
            i += 1
            continue
        if c == "'":
            sq = True
        elif c == '"':
            dq = True
        elif c == "`":
            bt = not bt
        elif s.startswith("$(", i) or s.startswith("<(", i) or s.startswith(">(", i):
            depth += 1
            cur.append(s[i:i + 2])
            i += 2
            continue
        elif c == ")" and depth:
            depth -= 1
        if depth == 0 and not bt:
            sep = 0
            if s.startswith("&&", i) or s.startswith("||", i):
                sep = 2
            elif c in ";\n|":
                sep = 1
            elif c == "&":
                prev = s[i - 1] if i else ""
                nxt = s[i + 1] if i + 1 < n else ""
                if prev in "<>" or nxt == ">":
                    sep = 0
                else:
                    sep = 1
            if sep:
                segs.append("".join(cur))
                cur = []
                i += sep
                continue
        cur.append(c)
        i += 1
    segs.append("".join(cur))
    return [x for x in segs if x.strip()]


def extract_subs(s):
    subs = []
    i, n = 0, len(s)
    sq = False
    while i < n:
        c = s[i]
        if sq:
            if c == "'":
                sq = False
            i += 1
            continue
        if c == "\\":
            i += 2
            continue
        if c == "'":
            sq = True
            i += 1
            continue
        if s.startswith("$(", i) or s.startswith("<(", i) or s.startswith(">(", i):
            d = 1
            j = i + 2
            while j < n and d:
                if s.startswith("$(", j):
                    d += 1
                    j += 2
                    continue
                if s[j] == ")":
                    d -= 1
                j += 1
            if d == 0:
                inner = s[i + 2:j - 1]
                if inner.strip():
                    subs.append(inner)
            i += 2
            continue
        if c == "`":
            j = s.find("`", i + 1)
            if j > 0:
                inner = s[i + 1:j]
                if inner.strip():
                    subs.append(inner)
                i = j + 1
                continue
        i += 1
    return subs


def tokenize(s):
    toks = []
    cur = []
    have = False
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in " \t\n":
            if have:
                toks.append("".join(cur))
            cur, have = [], False
            i += 1
            continue
        if c == "'":
            j = s.find("'", i + 1)
            if j < 0:
                j = n
            cur.append(s[i + 1:j])
            have = True
            i = j + 1
            continue
        if c == '"':
            i += 1
            while i < n and s[i] != '"':
                if s[i] == "\\" and i + 1 < n and s[i + 1] in '"\\$`\n':
                    if s[i + 1] != "\n":
                        cur.append(s[i + 1])
                    i += 2
                    continue
                cur.append(s[i])
                i += 1
            i += 1
            have = True
            continue
        if c == "\\":
            if i + 1 < n:
                if s[i + 1] != "\n":
                    cur.append(s[i + 1])
                i += 2
            else:
                cur.append("\\")
                i += 1
            have = True
            continue
        cur.append(c)
        have = True
        i += 1
    if have:
        toks.append("".join(cur))
    return [t for t in toks if t != ""]


ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
REDIR = re.compile(r"^[0-9]*(>>|>&|<<<|<<|<>|>|<|&>>|&>)(.*)$")
SHELLS = {"sh", "bash", "zsh", "dash", "ash", "ksh"}
DUR = re.compile(r"^[0-9.]+[smhd]?$")


def strip_leading(toks):
    changed = True
    while changed and toks:
        changed = False
        if ASSIGN.match(toks[0]):
            toks = toks[1:]
            changed = True
            continue
        m = REDIR.match(toks[0])
        if m:
            toks = toks[1:] if m.group(2) else toks[2:]
            changed = True
    return toks


def unwrap_once(toks):
    """Return (new_tokens, inner_command_string_or_None) or None if no change."""
    if not toks:
        return None
    w = toks[0]
    b = posixpath.basename(w)
    if b == "command":
        r = toks[1:]
        if r and r[0] in ("-v", "-V"):
            return None
        while r and r[0] in ("-p", "--"):
            r = r[1:]
        return (r, None) if r else None
    if b == "exec":
        r = toks[1:]
        while r and r[0].startswith("-"):
            if r[0] == "--":
                r = r[1:]
                break
            if r[0] == "-a" and len(r) > 1:
                r = r[2:]
                continue
            r = r[1:]
        return (r, None) if r else None
    if b == "env":
        r = toks[1:]
        while r:
            t = r[0]
            if t == "--":
                r = r[1:]
                break
            if t in ("-u", "--unset", "-C", "--chdir"):
                r = r[2:]
                continue
            if t in ("-S", "--split-string"):
                if len(r) < 2:
                    return None
                r = tokenize(r[1]) + r[2:]
                continue
            if t.startswith("-S"):
                r = tokenize(t[2:]) + r[1:]
                continue
            if t.startswith("-") :
                r = r[1:]
                continue
            if ASSIGN.match(t):
                r = r[1:]
                continue
            break
        return (r, None) if r else None
    if b == "nohup":
        r = toks[1:]
        if r and r[0] == "--":
            r = r[1:]
        if not r or r[0].startswith("-"):
            return None
        return (r, None)
    if b == "nice":
        r = toks[1:]
        if r and r[0] in ("-n", "--adjustment"):
            if len(r) < 2 or not re.match(r"^-?\d+$", r[1]):
                return None
            r = r[2:]
        elif r and re.match(r"^-\d+$", r[0]):
            r = r[1:]
        elif r and r[0].startswith("--adjustment="):
            r = r[1:]
        return (r, None) if r else None
    if b == "timeout":
        r = toks[1:]
        while r and r[0].startswith("-"):
            if r[0] in ("-k", "-s", "--kill-after", "--signal"):
                r = r[2:]
            else:
                r = r[1:]
        if not r or not DUR.match(r[0]):
            return None
        r = r[1:]
        return (r, None) if r else None
    if b == "setsid":
        r = toks[1:]
        while r and r[0].startswith("-"):
            if r[0] == "--":
                r = r[1:]
                break
            if not re.match(r"^-[cfw]+$", r[0]):
                return None
            r = r[1:]
        return (r, None) if r else None
    if b == "stdbuf":
        r = toks[1:]
        while r and r[0].startswith("-"):
            t = r[0]
            if t in ("-i", "-o", "-e"):
                if len(r) < 2 or not re.match(r"^([0-9]+[KMG]?|L)$", r[1]):
                    return None
                r = r[2:]
            elif re.match(r"^-[ioe]([0-9]+[KMG]?|L)$", t) or t.startswith("--"):
                r = r[1:]
            else:
                return None
        return (r, None) if r else None
    if b in SHELLS:
        i = 1
        while i < len(toks):
            t = toks[i]
            if t.startswith("--"):
                i += 1
                continue
            if t.startswith("-"):
                if "c" in t:
                    rest = toks[i + 1:]
                    if not rest:
                        return None
                    return ([], " ".join(rest) if len(rest) > 1 else rest[0])
                i += 1
                continue
            return None
        return None
    return None


def normalize_segment(seg):
    """Return list of (normalized component string, tokens) and list of extra raw subcommands."""
    toks = strip_leading(tokenize(sanitize(seg)))
    extra = []
    for _ in range(64):
        r = unwrap_once(toks)
        if r is None:
            break
        toks, inner = r
        if inner is not None:
            comps, ex = parse(inner)
            return comps, ex
        toks = strip_leading(toks)
    if toks and toks[0] == "eval" and len(toks) > 1:
        extra.append(" ".join(toks[1:]))
    return [" ".join(toks)] if toks else [], extra


def parse(cmd, depth=0):
    """Return (components, subcommand_components)."""
    comps = []
    if depth > 8:
        return comps, []
    cmd = sanitize(cmd)
    for seg in split_segments(cmd):
        c, extra = normalize_segment(seg)
        comps.extend(c)
        for e in extra:
            cc, _ = parse(e, depth + 1)
            comps.extend(cc)
    for sub in extract_subs(cmd):
        cc, _ = parse(sub, depth + 1)
        comps.extend(cc)
    return comps, []


def top_segments_normalized(cmd):
    out = []
    for seg in split_segments(sanitize(cmd)):
        c, _ = normalize_segment(seg)
        out.extend(c)
    return out


def normalized_command(cmd):
    return " && ".join(top_segments_normalized(cmd))


# ---------------------------------------------------------------- D3 wrappers
WRAP_OPTS = {
    "sudo": {"-u", "-g", "-h", "-p", "-r", "-t", "-C", "-D", "-R", "-T", "-U", "--user", "--group",
             "--host", "--prompt", "--role", "--type", "--close-from", "--chdir", "--chroot",
             "--command-timeout", "--other-user"},
    "doas": {"-u"},
    "time": {"-f", "-o", "--format", "--output"},
    "xargs": {"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter", "--eof",
              "--replace", "--max-lines", "--max-args", "--max-procs", "--max-chars",
              "--process-slot-var"},
    "watch": {"-n", "-q", "--interval", "--equexit"},
    "strace": {"-a", "-b", "-e", "-E", "-I", "-o", "-O", "-p", "-P", "-s", "-S", "-u", "-X"},
}


def d3_unwrap(comp):
    toks = tokenize(comp)
    if not toks:
        return None
    w = posixpath.basename(toks[0])
    if w not in WRAP_OPTS:
        return None
    if w == "sudo" and ("-e" in toks[1:2] or w == "sudoedit"):
        return None
    if w == "doas" and len(toks) > 1 and toks[1] == "-C":
        return None
    if w == "strace" and "-p" in toks:
        return None
    opts = WRAP_OPTS[w]
    r = toks[1:]
    while r:
        t = r[0]
        if t == "--":
            r = r[1:]
            break
        if t in opts:
            r = r[2:]
            continue
        if t.startswith("-"):
            r = r[1:]
            continue
        break
    if w == "sudo":
        while r and ASSIGN.match(r[0]):
            r = r[1:]
    if not r:
        return None
    return " ".join(r)


# ---------------------------------------------------------------- candidates (§6.1)
def clean_path(p):
    if p.startswith("/") or ".." in p.split("/"):
        q = posixpath.normpath(p)
        if q.startswith("//"):
            q = "/" + q.lstrip("/")
        return q
    return p


RM_FILTERS = {"-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex",
              "-lname", "-ilname", "-type", "-xtype", "-newer", "-anewer", "-cnewer", "-mtime", "-mmin",
              "-atime", "-amin", "-ctime", "-cmin", "-used", "-size", "-user", "-uid", "-group", "-gid",
              "-nouser", "-nogroup", "-perm", "-empty", "-links", "-inum", "-samefile", "-readable",
              "-writable", "-executable", "-fstype", "-context"}


def is_rf(args):
    r = f = False
    for a in args:
        if a == "--":
            break
        if a in ("--recursive",):
            r = True
        elif a == "--force":
            f = True
        elif a.startswith("-") and not a.startswith("--"):
            if "r" in a or "R" in a:
                r = True
            if "f" in a:
                f = True
    return r and f


def rm_aliases(comp):
    toks = tokenize(comp)
    if "#" in toks:
        toks = toks[:toks.index("#")]
    toks = [t for t in toks if not t.startswith("#")]
    while toks and posixpath.basename(toks[0]) in ("env", "busybox", "toybox"):
        toks = toks[1:]
    if not toks:
        return []
    b = posixpath.basename(toks[0]).lower()
    out = []
    if b == "rm" and is_rf(toks[1:]):
        ops = []
        end = False
        skip = False
        for t in toks[1:]:
            if skip:
                skip = False
                continue
            if not end and t == "--":
                end = True
                continue
            if not end and t.startswith("-"):
                continue
            m = REDIR.match(t)
            if m:
                if not m.group(2):
                    skip = True
                continue
            ops.append(t)
        out = ["rm -rf " + clean_path(o) for o in ops]
    elif b == "find":
        args = toks[1:]
        targets = []
        i = 0
        while i < len(args) and not (args[i].startswith("-") or args[i] in ("!", "(", ")", ",")):
            targets.append(args[i])
            i += 1
        if not targets:
            targets = ["."]
        rest = args[i:]
        act = None
        for k, t in enumerate(rest):
            if t == "-delete":
                act = k
                break
            if t in ("-exec", "-execdir") and k + 1 < len(rest):
                ex = rest[k + 1:]
                if posixpath.basename(ex[0]) == "rm" and is_rf(ex[1:]):
                    act = k
                    break
        if act is not None:
            before = rest[:act]
            complex_ = any(t in ("!", "-not", "-o", "-or", ",", "(", ")") for t in before)
            filtered = any(t in RM_FILTERS or t.startswith("-newer") for t in before)
            if complex_ or not filtered:
                out = ["rm -rf " + clean_path(t) for t in targets]
    return out


BODY_PREFIX = re.compile(r"^(\(\s*|\{\s+|if\s+|elif\s+|while\s+|until\s+|then\s+|do\s+|else\s+|!\s+)+")
BODY_SUFFIX = re.compile(r"(\s*\)|\s+(\}|fi|done|esac))+$")


def bodies(c):
    out = [c]
    b = BODY_PREFIX.sub("", c)
    b = BODY_SUFFIX.sub("", b).strip()
    if b and b != c:
        out.append(b)
    m = re.match(r"^case .* in .*?\) (.*?)(;;.*)?$", c)
    if m:
        out.append(m.group(1))
    return out


def semantic(c):
    toks = tokenize(c)
    out = []
    if not toks:
        return out
    b = posixpath.basename(toks[0]).lower()
    if b != toks[0]:
        out.append(" ".join([b] + toks[1:]))
    if b in ("busybox", "toybox") and len(toks) > 1:
        out.append(" ".join(toks[1:]))
    if b in SHELLS and len(toks) > 2 and toks[1] == "<<<":
        out.append(toks[2])
    return out


def restrictive_candidates(cmd):
    """List of (candidate, component_index_or_None)."""
    cands = [(cmd, None)]
    comps, _ = parse(cmd)
    norm = normalized_command(cmd)
    if norm != cmd:
        cands.append((norm, None))
    work = list(comps)
    seen = set()
    idx = 0
    while idx < len(work) and idx < 512:
        c = work[idx]
        idx += 1
        if c in seen:
            continue
        seen.add(c)
        for b in bodies(c):
            cands.append((b, c))
            for a in rm_aliases(b):
                cands.append((a, c))
            for s in semantic(b):
                cands.append((s, c))
                for a in rm_aliases(s):
                    cands.append((a, c))
            u = d3_unwrap(b)
            if u is not None:
                cc, _ = parse(u)
                work.extend(cc)
    return cands, comps


# ---------------------------------------------------------------- conditions
def env_assignments(cmd, depth=0):
    names = []
    if depth > 4:
        return names
    for seg in split_segments(sanitize(cmd)):
        toks = tokenize(seg)
        i = 0
        while i < len(toks) and ASSIGN.match(toks[i]):
            names.append(toks[i].split("=", 1)[0])
            i += 1
        r = toks[i:]
        # unwrap simple wrappers
        for _ in range(8):
            if not r:
                break
            b = posixpath.basename(r[0])
            if b in ("export", "declare", "typeset", "local", "readonly"):
                for t in r[1:]:
                    if ASSIGN.match(t):
                        names.append(t.split("=", 1)[0])
                break
            if b == "env":
                r = r[1:]
                while r and (r[0].startswith("-") or ASSIGN.match(r[0])):
                    if ASSIGN.match(r[0]):
                        names.append(r[0].split("=", 1)[0])
                    if r[0] in ("-u", "-C"):
                        r = r[1:]
                    r = r[1:]
                continue
            if b in ("sudo", "nohup", "nice", "timeout", "command", "exec", "time", "xargs"):
                u = d3_unwrap(" ".join(r)) if b in WRAP_OPTS else None
                if u is None:
                    res = unwrap_once(r)
                    if not res:
                        break
                    r = res[0]
                else:
                    r = tokenize(u)
                k = 0
                while k < len(r) and ASSIGN.match(r[k]):
                    names.append(r[k].split("=", 1)[0])
                    k += 1
                r = r[k:]
                continue
            if b in SHELLS:
                res = unwrap_once(r)
                if res and res[1] is not None:
                    names.extend(env_assignments(res[1], depth + 1))
                break
            if b == "eval":
                names.extend(env_assignments(" ".join(r[1:]), depth + 1))
            break
    for sub in extract_subs(cmd):
        names.extend(env_assignments(sub, depth + 1))
    return names


def is_composite_pattern(p):
    return len(split_segments(p)) > 1


def match_command_restrictive(when, cmd, cache):
    if "cands" not in cache:
        cache["cands"] = restrictive_candidates(cmd)
    cands, comps = cache["cands"]
    pos = when.get("command_matches") or []
    neg = when.get("command_not_matches") or []
    cont = when.get("command_contains") or []
    if isinstance(pos, str):
        pos = [pos]
    if isinstance(neg, str):
        neg = [neg]
    if isinstance(cont, str):
        cont = [cont]
    for cand, comp in cands:
        if any(cmd_glob(p, cand, loose=True) for p in pos):
            if not any(cmd_glob(n, cand) for n in neg):
                return True
    if cont:
        low = cmd.lower()
        alt = normalized_command(cmd).lower() if re.search(r"['\"\\]", cmd) else None
        for c in cont:
            cl = c.lower()
            if cl in low or (alt is not None and cl in alt):
                if not neg:
                    return True
                # exclusions checked per component
                if any(cl in x.lower() and not any(cmd_glob(n, x) for n in neg) for x in comps) or \
                        not any(cl in x.lower() for x in comps):
                    if not any(cmd_glob(n, cmd) for n in neg):
                        return True
    return False


def match_command_granting(when, cmd, cache):
    pos = when.get("command_matches") or []
    neg = when.get("command_not_matches") or []
    cont = when.get("command_contains") or []
    if isinstance(pos, str):
        pos = [pos]
    if isinstance(neg, str):
        neg = [neg]
    if isinstance(cont, str):
        cont = [cont]
    comps, _ = parse(cmd)
    norm = normalized_command(cmd)
    if neg and any(cmd_glob(n, x) for n in neg for x in [cmd, norm] + comps):
        return False
    has_sub = bool(extract_subs(cmd))
    segs = top_segments_normalized(cmd)
    composite = len(comps) > 1 or has_sub or len(segs) > 1
    if not composite:
        c = comps[0] if comps else norm
        if any(cmd_glob(p, c) for p in pos):
            return True
        return any(x and x in c for x in cont)
    for p in pos:
        if is_composite_pattern(p) and (cmd_glob(p, cmd) or cmd_glob(p, norm)):
            return True
    if not comps:
        return False
    for c in comps:
        if not (any(cmd_glob(p, c) for p in pos) or any(x.strip() and x in c for x in cont)):
            return False
    return True


PATH_KEYS = ("file_path", "path", "file", "filepath", "target")


def call_path(params):
    for k in PATH_KEYS:
        if params.get(k):
            return params[k]
    return ""


def clean_fs(p):
    p = p.replace("\\", "/")
    if not p:
        return p
    return posixpath.normpath(p) if not p.startswith("//") else "/" + posixpath.normpath(p).lstrip("/")


def match_when(when, action, call, cache):
    if not when:
        return True
    if when.get("default"):
        return True
    restrictive = action in ("deny", "ask", "verify", "require_approval")
    params = call.get("params") or {}
    if set(when) <= {"response_matches", "response_not_matches"}:
        return False
    ok_any = False
    if any(k in when for k in ("command_matches", "command_contains")):
        cmd = params.get("command") or params.get("cmd") or ""
        if not cmd:
            return False
        f = match_command_restrictive if restrictive else match_command_granting
        if not f(when, cmd, cache):
            return False
        ok_any = True
    if "command_env_assignments" in when:
        cmd = params.get("command") or ""
        names = env_assignments(cmd)
        pats = when["command_env_assignments"]
        if isinstance(pats, str):
            pats = [pats]
        if not any(cmd_glob(p, n) for p in pats for n in names):
            return False
        ok_any = True
    if "path_matches" in when:
        p = clean_fs(call_path(params))
        if not p:
            return False
        pats = when["path_matches"]
        negs = when.get("path_not_matches") or []
        if not any(fs_glob(x, p) for x in pats):
            return False
        if any(fs_glob(x, p) for x in negs):
            return False
        ok_any = True
    if "domain_matches" in when:
        url = params.get("url") or ""
        m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)", url)
        host = m.group(1).split("@")[-1].split(":")[0].lower().rstrip(".") if m else (params.get("domain") or "").lower()
        if not any(fs_glob(d.lower().rstrip("."), host) for d in when["domain_matches"]):
            return False
        ok_any = True
    if "url_matches" in when:
        url = params.get("url") or ""
        if not url or not any(cmd_glob(u, url) for u in when["url_matches"]):
            return False
        ok_any = True
    if "call_count" in when:
        return False
    if "tool_param_matches" in when:
        return False
    return ok_any


def evaluate(cfg, call, verifier=True):
    tool = call.get("tool", "exec")
    pols = []
    for i, p in enumerate(cfg.get("policies") or []):
        if p.get("enabled", True) is False:
            continue
        tools = (p.get("match") or {}).get("tool")
        if tools:
            if isinstance(tools, str):
                tools = [tools]
            if not any(cmd_glob(t, tool) for t in tools):
                continue
        pols.append((p.get("priority") or 100, i, p))
    pols.sort(key=lambda x: (x[0], x[1]))
    default = (cfg.get("default_action") or "deny").lower()
    best = None
    cache = {}
    for _, _, p in pols:
        for r in p.get("rules") or []:
            act = r["action"].lower()
            if act == "log":
                act = "watch"
            if act == "require_approval":
                act = "ask"
            when = r.get("when") or {}
            if not match_when(when, act, call, cache):
                continue
            eff = act
            if act == "verify" and not verifier:
                eff = "watch"
            if eff == "deny":
                return {"decision": "deny", "policy": p["name"], "message": r.get("message", "")}
            if best is None or RANK[eff] > RANK[best[0]]:
                best = (eff, p["name"], r.get("message", ""))
            break
    if best is None:
        return {"decision": default, "policy": None, "message": "no matching rule"}
    return {"decision": best[0], "policy": best[1], "message": best[2]}


def run_tests(path):
    cfg = yaml.safe_load(open(path))
    bad = 0
    for t in cfg.get("tests") or []:
        exp = t["expect"]
        exp = {"log": "watch", "require_approval": "ask"}.get(exp, exp)
        got = evaluate(cfg, {"tool": t["tool"], "params": t.get("params") or {}})
        if got["decision"] != exp:
            bad += 1
            print(f"FAIL {t['name']}: expect {exp} got {got['decision']} ({got['policy']})")
    print(f"{len(cfg.get('tests') or []) - bad} passed, {bad} failed")
    return bad


def main():
    args = sys.argv[1:]
    if args and args[0] == "--tests":
        sys.exit(1 if run_tests(args[1]) else 0)
    cfg = yaml.safe_load(open(args[0]))
    for line in sys.stdin:
        if not line.strip():
            continue
        c = json.loads(line)
        call = c if "tool" in c else {"tool": "exec", "params": {"command": c["command"]}}
        r = evaluate(cfg, call)
        out = dict(c)
        out.update(r)
        print(json.dumps(out))


if __name__ == "__main__":
    main()
