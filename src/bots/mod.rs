//! Bots (C5): the ladder strategy, exchanges and the runner's state.

pub mod ladder;
