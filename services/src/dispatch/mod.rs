//! Quick-reaction dispatch: which units to send ([`nearest`]).
pub mod nearest;
