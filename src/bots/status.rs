//! A bot's states as `user_bots` stores them and the API shows them:
//! what the runner reports (`BotStatus`), what the user asked for
//! (`DesiredState`), and how a stop treats the exchange (`StopMode`).
//!
//! Invariants: the texts below are the stored values and the JSON values; an
//! existing database and every client keep reading the same words. A stored value
//! outside these lists is an error when read, not a default.

use crate::text_enum::text_enum;

text_enum! {
    /// What the runner reports about a bot (`user_bots.status`).
    #[derive(Default)]
    pub enum BotStatus {
        #[default]
        Stopped = "stopped",
        Starting = "starting",
        Running = "running",
        Stopping = "stopping",
        /// Ended by a failure; `last_error` says which.
        Error = "error",
        /// Ended by the safety check: an order it did not place appeared.
        SafetyStop = "safety_stop",
    }
}

impl BotStatus {
    /// Between a start and the end of a stop: the bot may have orders working and
    /// its configuration must not change.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            BotStatus::Starting | BotStatus::Running | BotStatus::Stopping
        )
    }
}

text_enum! {
    /// What the user asked for (`user_bots.desired_state`): what a restarted
    /// runner does with the bot.
    #[derive(Default)]
    pub enum DesiredState {
        Running = "running",
        #[default]
        Stopped = "stopped",
    }
}

text_enum! {
    /// How a stop treats the exchange.
    #[derive(Default)]
    pub enum StopMode {
        /// Leaves orders and the position as they are.
        Keep = "keep",
        /// Cancels the bot's orders and keeps the position (the default).
        #[default]
        CancelOrders = "cancel_orders",
        /// Cancels the bot's orders and closes the position.
        ClosePosition = "close_position",
        /// Lets the current cycle finish, then stops instead of repeating.
        AfterCycle = "after_cycle",
    }
}

text_enum! {
    /// Why a bot ended (`user_bots.stop_reason`, docs/bots.md, Stops and closes).
    pub enum StopReason {
        /// Its stop-loss closed the cycle and `after_stop_loss` is `stop`.
        StopLoss = "stop_loss",
        /// The position was closed by someone else.
        ClosedOutside = "closed_outside",
        /// The exchange liquidated the position.
        Liquidated = "liquidated",
        /// The cycle finished and the bot was not to repeat (`repeat` off, or a
        /// stop with mode `after_cycle`).
        AfterCycle = "after_cycle",
        User = "user",
        Admin = "admin",
        /// A failure, or a safety stop.
        Error = "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_and_shown_words_stay_the_same() {
        let words = |all: &[&'static str]| all.to_vec();
        assert_eq!(
            BotStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            words(&[
                "stopped",
                "starting",
                "running",
                "stopping",
                "error",
                "safety_stop"
            ])
        );
        assert_eq!(
            DesiredState::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            words(&["running", "stopped"])
        );
        assert_eq!(
            StopMode::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            words(&["keep", "cancel_orders", "close_position", "after_cycle"])
        );
        assert_eq!(
            (
                BotStatus::default(),
                DesiredState::default(),
                StopMode::default()
            ),
            (
                BotStatus::Stopped,
                DesiredState::Stopped,
                StopMode::CancelOrders
            )
        );
    }

    #[test]
    fn every_word_round_trips_and_others_are_refused() {
        for &s in BotStatus::ALL {
            assert_eq!(s.as_str().parse(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for &m in StopMode::ALL {
            assert_eq!(m.as_str().parse(), Ok(m));
        }
        for &r in StopReason::ALL {
            assert_eq!(r.as_str().parse(), Ok(r));
        }
        assert!("Running".parse::<BotStatus>().is_err());
        assert!("sideways".parse::<StopMode>().is_err());
        assert!("".parse::<DesiredState>().is_err());
    }

    #[test]
    fn active_means_between_start_and_stopped() {
        let active: Vec<_> = BotStatus::ALL.iter().filter(|s| s.is_active()).collect();
        assert_eq!(
            active,
            [
                &BotStatus::Starting,
                &BotStatus::Running,
                &BotStatus::Stopping
            ]
        );
    }
}
