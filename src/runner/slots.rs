//! The runner's bots by id, with each user's bot ids beside them: the
//! questions asked per user (a start's position claim, dropping a lost user,
//! releasing an idle one) look at that user's bots, never at all of them — at
//! 20,000 bots a scan per start made a resume quadratic.

use std::collections::HashMap;

/// Bot id → `T`, indexed by user.
pub struct Slots<T> {
    by_bot: HashMap<i64, (i64, T)>,
    by_user: HashMap<i64, Vec<i64>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            by_bot: HashMap::new(),
            by_user: HashMap::new(),
        }
    }
}

impl<T> Slots<T> {
    pub fn contains_key(&self, bot_id: &i64) -> bool {
        self.by_bot.contains_key(bot_id)
    }

    pub fn get(&self, bot_id: &i64) -> Option<&T> {
        self.by_bot.get(bot_id).map(|(_, slot)| slot)
    }

    pub fn get_mut(&mut self, bot_id: &i64) -> Option<&mut T> {
        self.by_bot.get_mut(bot_id).map(|(_, slot)| slot)
    }

    /// Puts bot `bot_id` of `user_id` in (replacing what it held).
    pub fn insert(&mut self, bot_id: i64, user_id: i64, slot: T) {
        if let Some((old_user, _)) = self.by_bot.insert(bot_id, (user_id, slot)) {
            self.unindex(bot_id, old_user);
        }
        self.by_user.entry(user_id).or_default().push(bot_id);
    }

    pub fn remove(&mut self, bot_id: &i64) -> Option<T> {
        let (user_id, slot) = self.by_bot.remove(bot_id)?;
        self.unindex(*bot_id, user_id);
        Some(slot)
    }

    /// Whether a bot of `user_id` is in.
    pub fn has_user(&self, user_id: i64) -> bool {
        self.by_user.contains_key(&user_id)
    }

    /// The bots of `user_id` that are in, with their ids.
    pub fn of_user(&self, user_id: i64) -> impl Iterator<Item = (i64, &T)> {
        let ids = self.by_user.get(&user_id).map(Vec::as_slice).unwrap_or(&[]);
        ids.iter()
            .filter_map(|id| self.by_bot.get(id).map(|(_, slot)| (*id, slot)))
    }

    fn unindex(&mut self, bot_id: i64, user_id: i64) {
        if let Some(ids) = self.by_user.get_mut(&user_id) {
            ids.retain(|id| *id != bot_id);
            if ids.is_empty() {
                self.by_user.remove(&user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_users_bots_are_found_without_the_others_and_leave_with_them() {
        let mut s = Slots::default();
        s.insert(1, 10, "a");
        s.insert(2, 10, "b");
        s.insert(3, 20, "c");
        let mut of_10: Vec<(i64, &&str)> = s.of_user(10).collect();
        of_10.sort();
        assert_eq!(of_10, [(1, &"a"), (2, &"b")]);
        assert!(s.has_user(20) && !s.has_user(30));
        assert_eq!(s.remove(&3), Some("c"));
        assert!(!s.has_user(20) && s.of_user(20).next().is_none());
        assert_eq!(s.remove(&3), None);
        // A bot put in again under another user moves with it.
        s.insert(2, 20, "b2");
        assert_eq!(s.of_user(10).map(|(id, _)| id).collect::<Vec<_>>(), [1]);
        assert_eq!(s.get(&2), Some(&"b2"));
        *s.get_mut(&1).unwrap() = "a2";
        assert_eq!(s.of_user(10).next(), Some((1, &"a2")));
        assert!(s.contains_key(&1) && !s.contains_key(&3));
    }
}
