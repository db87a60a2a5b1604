//! Embeds build identity for `/health` and the MCP `serverInfo`.
//!
//! `PLAUSIBLE_MCP_COMMIT` is the short git commit (with `-dirty` when the
//! tree has uncommitted changes). It degrades to `unknown` when git is not
//! installed or the source is not a git checkout (a crate tarball, a
//! container build), so the build never fails for lack of git.

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = git_commit().unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PLAUSIBLE_MCP_COMMIT={commit}");

    // Rebuild when HEAD moves. Only name files that exist: cargo treats a
    // missing rerun-if-changed path as always stale.
    println!("cargo:rerun-if-changed=build.rs");
    for path in [".git/HEAD", ".git/index"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(reference) = head_ref() {
        let path = format!(".git/{reference}");
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned())
}

fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    if commit.is_empty() {
        return None;
    }
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

fn head_ref() -> Option<String> {
    let head = std::fs::read_to_string(".git/HEAD").ok()?;
    head.strip_prefix("ref: ").map(|r| r.trim().to_owned())
}
