//! Private account streams (C16, ARCHITECTURE §11): each exchange account that
//! a running bot uses gets one authenticated WebSocket, whose order, fill,
//! position and wallet events keep an [`view::AccountView`]; the bots read that
//! view through [`crate::exchange::streamed::Streamed`] instead of polling REST.

pub mod bingx;
pub mod bybit;
pub mod update;
pub mod view;
