//! Where a step of the browser flow sends the browser next.

use super::consent;
use crate::http::Response;
use crate::secret::SetCookie;

/// Where the browser goes next.
#[derive(Debug)]
pub enum Reply {
    /// A 302, with cookies to set or clear.
    Redirect {
        location: String,
        cookies: Vec<SetCookie>,
    },
    /// The consent page.
    Ask(Box<consent::ConsentPage>),
    /// Any other page of the flow (the key form of `/mcp`).
    Page(Box<Response>),
}

impl Reply {
    #[cfg(feature = "test-hooks")]
    pub(super) fn to(location: String) -> Self {
        Reply::Redirect {
            location,
            cookies: Vec::new(),
        }
    }

    pub fn response(&self) -> Response {
        match self {
            Reply::Redirect { location, cookies } => {
                let mut r = Response::redirect(location);
                for c in cookies {
                    r.headers.append("set-cookie", c.secret());
                }
                r
            }
            Reply::Ask(page) => page.response(),
            Reply::Page(response) => (**response).clone(),
        }
    }
}
