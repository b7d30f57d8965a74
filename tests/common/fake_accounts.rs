//! The accounts of one fake exchange: a book per API key. A request finds its
//! account by its key header in a hash map (O(1), whatever the number of
//! accounts: the benchmark runs a thousand on one fake); a price move walks them
//! all. Account 0 is the one the fake was started with, so `book()` keeps its
//! meaning for the tests written before there were several.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rust_decimal::Decimal;

use super::fake_book::Book;

/// What an API key may do, as the key-information endpoints answer (Bybit
/// `GET /v5/user/query-api`, BingX `GET /openApi/v1/account/apiPermissions`).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyPerms {
    /// Read only: no trading.
    pub read_only: bool,
    /// May withdraw (a key a trading bot should refuse).
    pub withdraw: bool,
    /// The IPs the key is bound to; `["*"]` (Bybit) / empty (BingX) when none.
    pub ips: Vec<String>,
    /// Bybit `expiredAt` (RFC 3339); empty for a key bound to IPs (no expiry).
    pub expired_at: String,
}

impl Default for KeyPerms {
    fn default() -> KeyPerms {
        KeyPerms {
            read_only: false,
            withdraw: false,
            ips: vec!["*".into()],
            expired_at: "2099-01-01T00:00:00Z".into(),
        }
    }
}

pub type Shared = Arc<Mutex<Book>>;

#[derive(Default)]
pub struct Accounts {
    list: RwLock<Vec<Shared>>,
    by_key: RwLock<HashMap<String, usize>>,
}

impl Accounts {
    pub fn new(first: Book) -> Accounts {
        let accounts = Accounts::default();
        accounts.push(first);
        accounts
    }

    fn push(&self, book: Book) -> usize {
        let mut list = self.list.write().unwrap();
        let i = list.len();
        self.by_key.write().unwrap().insert(book.api_key.clone(), i);
        list.push(Arc::new(Mutex::new(book)));
        i
    }

    /// A new account with its own key and secret, at the market's current prices
    /// and clock. Returns its index.
    pub fn add(&self, key: &str, secret: &str) -> usize {
        let mut book = Book::new(key, secret);
        {
            let first = self.first();
            let f = first.lock().unwrap();
            book.price = f.price;
            book.pinned_mark = f.pinned_mark;
            book.skew_ms = f.skew_ms;
        }
        self.push(book)
    }

    pub fn first(&self) -> Shared {
        self.get(0).expect("the first account")
    }

    pub fn get(&self, i: usize) -> Option<Shared> {
        self.list.read().unwrap().get(i).cloned()
    }

    /// The account of this API key.
    pub fn by_key(&self, key: &str) -> Option<Shared> {
        let i = *self.by_key.read().unwrap().get(key)?;
        self.get(i)
    }

    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.by_key.read().unwrap().get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.list.read().unwrap().len()
    }

    /// Runs `f` on every account's book, one lock at a time.
    pub fn each(&self, mut f: impl FnMut(&mut Book)) {
        let list: Vec<Shared> = self.list.read().unwrap().clone();
        for b in list {
            f(&mut b.lock().unwrap());
        }
    }

    /// Moves the last price of every account (fills and triggers follow).
    pub fn set_price(&self, price: Decimal) {
        self.each(|b| b.set_price(price));
    }

    /// Pins the mark price of every account.
    pub fn set_mark(&self, mark: Decimal) {
        self.each(|b| b.set_mark(mark));
    }
}

/// Locks one account's book (for the fakes' `account(i)` accessors).
pub fn lock(b: &Shared) -> MutexGuard<'_, Book> {
    b.lock().unwrap()
}
