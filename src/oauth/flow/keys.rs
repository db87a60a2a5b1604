//! The keys a new sign-in needs at every step.

use crate::crypto::{Keyring, UserKeys};

/// The keys every step of a new sign-in needs: `COOKIE_SECRET`'s and
/// `USER_KEY_SECRET`'s. Checked at `/authorize`, so nobody is sent
/// through a login that cannot end in a code.
#[derive(Clone, Copy)]
pub struct FlowKeys<'a> {
    pub ring: &'a Keyring,
    pub user: &'a UserKeys,
}
