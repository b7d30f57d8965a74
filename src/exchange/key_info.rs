//! What an exchange says about an API key, and whether the server accepts it
//! (CONTRACT C16; docs/bots.md, API keys). Each adapter reads its own answer
//! into a [`KeyInfo`]; the decision is the same for every exchange.

/// A key's permissions and limits as the exchange reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// May place and cancel perpetual-futures orders.
    pub trade: bool,
    /// The exchange marks the key read-only.
    pub read_only: bool,
    /// May withdraw funds from the account.
    pub withdraw: bool,
    /// When the key stops working (Unix seconds); `None` = never.
    pub expires_at: Option<i64>,
    /// The addresses the key works from; `None` = any address.
    pub ip_whitelist: Option<Vec<String>>,
}

impl KeyInfo {
    /// An account without API keys (the paper exchange's): trades, never expires,
    /// works from anywhere.
    pub fn keyless() -> KeyInfo {
        KeyInfo {
            trade: true,
            read_only: false,
            withdraw: false,
            expires_at: None,
            ip_whitelist: None,
        }
    }
}

/// Why a key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// It can withdraw: a bot never needs that, and a leaked key that can would
    /// empty the account.
    Withdraw,
    ReadOnly,
    /// Not read-only, but without the futures-trading permission.
    NoTrade,
}

impl KeyProblem {
    /// The message for the `api_key` field.
    pub fn message(self) -> &'static str {
        match self {
            KeyProblem::Withdraw => {
                "this key has withdrawal permission: create a key without withdrawal permission"
            }
            KeyProblem::ReadOnly => {
                "this key is read-only: create a key with futures (contract) trading permission"
            }
            KeyProblem::NoTrade => {
                "this key has no futures (contract) trading permission: enable it or create a \
                 key that has it"
            }
        }
    }
}

impl KeyInfo {
    /// The reason to refuse the key, if any; withdrawal first, as it is the
    /// dangerous one whatever else the key may do.
    pub fn problem(&self) -> Option<KeyProblem> {
        if self.withdraw {
            Some(KeyProblem::Withdraw)
        } else if self.read_only {
            Some(KeyProblem::ReadOnly)
        } else if !self.trade {
            Some(KeyProblem::NoTrade)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(trade: bool, read_only: bool, withdraw: bool) -> KeyInfo {
        KeyInfo {
            trade,
            read_only,
            withdraw,
            expires_at: None,
            ip_whitelist: None,
        }
    }

    #[test]
    fn withdrawal_is_refused_before_anything_else() {
        assert_eq!(key(true, false, false).problem(), None);
        assert_eq!(key(true, false, true).problem(), Some(KeyProblem::Withdraw));
        assert_eq!(key(false, true, true).problem(), Some(KeyProblem::Withdraw));
        assert_eq!(
            key(false, true, false).problem(),
            Some(KeyProblem::ReadOnly)
        );
        assert_eq!(key(true, true, false).problem(), Some(KeyProblem::ReadOnly));
        assert_eq!(
            key(false, false, false).problem(),
            Some(KeyProblem::NoTrade)
        );
        assert!(KeyProblem::Withdraw
            .message()
            .contains("without withdrawal permission"));
    }
}
