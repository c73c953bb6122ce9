//! Quick-reaction dispatch: which units to send ([`nearest`]), and the lifecycle of a dispatch
//! with its deadlines and city-wide calls ([`board`] holds the state, [`desk`] changes it).
pub mod board;
pub mod desk;
pub mod nearest;
