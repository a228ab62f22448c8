//! Tool names: the names agent integrations send, mapped to the tools policies scope.

/// The policy tool for an integration's tool name: Claude Code's `Bash` is `exec`,
/// `Read`/`Grep` are `read`, `Write`/`Edit` are `write`, `WebFetch` is `fetch`, `Task` is
/// `agent`. Other names, MCP names included (policies may match `mcp__server__tool`
/// directly; [`classify_mcp`] gives the class), are returned unchanged.
pub fn canonical_tool(name: &str) -> String {
    let mapped = match name {
        "Bash" | "PowerShell" | "Monitor" | "code_execution" | "execute_command"
        | "run_command" | "shell" => "exec",
        "Read" | "Glob" | "Grep" | "LSP" | "ToolSearch" | "read_file" | "list_directory" => "read",
        "Write" | "Edit" | "NotebookEdit" | "EnterWorktree" => "write",
        "WebFetch" | "WebSearch" => "fetch",
        "Task" | "Agent" | "Workflow" | "RemoteTrigger" => "agent",
        _ => "",
    };
    if !mapped.is_empty() {
        return mapped.to_string();
    }
    name.to_string()
}

const DESTRUCTIVE: &[&str] = &[
    "delete", "destroy", "remove", "drop", "purge", "kill", "format", "wipe", "truncate", "reset",
];
const DANGEROUS: &[&str] = &[
    "stop",
    "shutdown",
    "reboot",
    "restart",
    "migrate",
    "resize",
    "modify",
    "update",
    "patch",
    "configure",
    "execute",
    "exec",
    "run",
    "send",
    "post",
];

/// Classifies an MCP tool (`mcp__server__tool` or a bare tool name) by the words in its
/// name: `mcp-destructive`, `mcp-dangerous` or `mcp`.
pub fn classify_mcp(name: &str) -> &'static str {
    let tool = name.rsplit("__").next().unwrap_or(name);
    let t = tool.to_ascii_lowercase();
    if DESTRUCTIVE.iter().any(|w| t.contains(w)) {
        "mcp-destructive"
    } else if DANGEROUS.iter().any(|w| t.contains(w)) {
        "mcp-dangerous"
    } else {
        "mcp"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_names() {
        assert_eq!(canonical_tool("Bash"), "exec");
        assert_eq!(canonical_tool("Edit"), "write");
        assert_eq!(canonical_tool("Grep"), "read");
        assert_eq!(canonical_tool("WebSearch"), "fetch");
        assert_eq!(canonical_tool("Task"), "agent");
        assert_eq!(canonical_tool("exec"), "exec");
        assert_eq!(canonical_tool("custom"), "custom");
    }

    #[test]
    fn mcp_classification() {
        assert_eq!(classify_mcp("mcp__db__drop_table"), "mcp-destructive");
        assert_eq!(classify_mcp("mcp__k8s__restart_pod"), "mcp-dangerous");
        assert_eq!(classify_mcp("mcp__docs__search"), "mcp");
        assert_eq!(canonical_tool("mcp__docs__search"), "mcp__docs__search");
    }
}
