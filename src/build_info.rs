//! What was built: reported by `/health` and in the MCP `serverInfo`.

use serde::Serialize;

pub const NAME: &str = "plausible-mcp";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Short git commit, `-dirty` when built from a modified tree, or `unknown`
/// without git (see `build.rs`).
pub const COMMIT: &str = env!("PLAUSIBLE_MCP_COMMIT");

#[derive(Serialize)]
pub struct Health {
    pub status: &'static str,
    pub name: &'static str,
    pub version: &'static str,
    pub commit: &'static str,
}

pub fn health() -> Health {
    Health {
        status: "ok",
        name: NAME,
        version: VERSION,
        commit: COMMIT,
    }
}
