//! Who may do what: roles, grid scope, tokens.
//!
//! What each role may do is the access policy's table ([`crate::policy`]); this module holds
//! who a caller is. A request without a token is `public`. Grid scope is a list of unit codes: a grid worker
//! assigned a community covers every grid beneath it (see `GridCode::covers`).

use crate::layer::{Item, Props};
use rand::RngCore;
use safegrid_geodata::GridCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the deployment.
    Admin,
    /// Sits at the map wall and sends units.
    Dispatcher,
    /// Looks after one or more grids.
    GridWorker,
    /// Checks everything, changes nothing.
    Auditor,
    /// A tracker gateway or fleet bridge: reports positions, reads nothing.
    Gateway,
    /// A citizen or anyone without a token.
    Public,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 6] =
        [Role::Admin, Role::Dispatcher, Role::GridWorker, Role::Auditor, Role::Gateway, Role::Public];

    /// The role's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Dispatcher => "dispatcher",
            Self::GridWorker => "grid_worker",
            Self::Auditor => "auditor",
            Self::Gateway => "gateway",
            Self::Public => "public",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| {
            format!("unknown role {s:?}: expected admin, dispatcher, grid_worker, auditor, gateway or public")
        })
    }
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name (a person or a system), written to the audit log.
    pub name: String,
    /// Role.
    pub role: Role,
    /// For grid workers: the units they are responsible for.
    pub grids: Vec<GridCode>,
}

impl Principal {
    /// The anonymous caller.
    #[must_use]
    pub fn public() -> Self {
        Self { name: "anonymous".into(), role: Role::Public, grids: Vec::new() }
    }

    /// Whether the caller's grid scope covers an item in `grid` (`None`: outside every grid).
    /// Only grid workers are scoped.
    #[must_use]
    pub fn covers(&self, grid: Option<&GridCode>) -> bool {
        if self.role != Role::GridWorker {
            return true;
        }
        grid.is_some_and(|g| self.grids.iter().any(|mine| mine.covers(g)))
    }

    /// Whether an item lies within the caller's grid scope. A key person is within the scope of
    /// the workers of the grid they are assigned to as well as of the grid they were last seen in.
    #[must_use]
    pub fn covers_item(&self, it: &Item) -> bool {
        if self.covers(it.grid.as_ref()) {
            return true;
        }
        matches!(&it.props, Props::KeyPerson(k) if self.covers(Some(&k.assigned_grid)))
    }

    /// Whether the caller holds the admin role (grids and deadlines are theirs alone; the
    /// service checks this again below the HTTP door, for the CLI's and tests' sake).
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A new random bearer token: `sg_` and 32 random bytes in hex.
#[must_use]
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("sg_{}", hex::encode(bytes))
}

/// What the store keeps of a token: its SHA-256, never the token itself.
#[must_use]
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_worker_covers_only_units_beneath_its_assignment() {
        let p =
            Principal { name: "w".into(), role: Role::GridWorker, grids: vec![GridCode::parse("440304001").unwrap()] };
        assert!(p.covers(Some(&GridCode::parse("440304001").unwrap())));
        assert!(!p.covers(Some(&GridCode::parse("440304002").unwrap())));
        assert!(!p.covers(None));
        assert!(Principal { role: Role::Dispatcher, ..p.clone() }.covers(None));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
